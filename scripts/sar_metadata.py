"""The publisher's metadata for `make publish`: who publishes, and where the code lives.

Usage::

    sar_metadata.py check [--author A] [--home-page-url URL] [--source-code-url URL]
    sar_metadata.py write TEMPLATE [--author A] [--home-page-url URL] [--source-code-url URL]

Author, HomePageUrl and SourceCodeUrl come from sar/publisher.toml (author, home_page_url,
source_code_url), each overridden by its option when that is given and not empty (make publish
passes AUTHOR, HOME_PAGE_URL and SOURCE_CODE_URL). ``check`` refuses, before anything is built, a
value that is missing or a placeholder (an "example" author, an example.com or github.com/example
URL, anything but https). ``write`` then sets them in the AWS::ServerlessRepo::Application metadata
of TEMPLATE (the built functions template, which ``sam package`` reads next); SemanticVersion stays
what functions/template.yaml says, its one source. Exit status 2, with the fix, when refused.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from samcli.yamlhelper import yaml_dump, yaml_parse
from template_functions import FUNCTIONS_TEMPLATE, REPO

if TYPE_CHECKING:
    from collections.abc import Sequence

PUBLISHER_FILE = REPO / "sar" / "publisher.toml"
METADATA = "AWS::ServerlessRepo::Application"
# Metadata key, key in PUBLISHER_FILE, make variable.
FIELDS = (
    ("Author", "author", "AUTHOR"),
    ("HomePageUrl", "home_page_url", "HOME_PAGE_URL"),
    ("SourceCodeUrl", "source_code_url", "SOURCE_CODE_URL"),
)
PLACEHOLDER_AUTHORS = {"example", "author", "your-name", "yourname", "changeme", "todo", "tbd"}
URL = re.compile(r"https://(?P<host>[A-Za-z0-9.-]+\.[A-Za-z]{2,})(?P<path>/\S*)?")
PLACEHOLDER_HOST = re.compile(r"(^|\.)example\.(com|org|net)$|(^|\.)localhost$", re.IGNORECASE)
PLACEHOLDER_PATH = re.compile(r"^/(example|your-?org|owner|user|changeme)(/|$)", re.IGNORECASE)
SEMANTIC_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


class PublisherError(Exception):
    """The publisher's metadata is missing or a placeholder; the message says where to set it."""


def problem(field: str, value: str) -> str | None:
    """Why `value` cannot be published as `field` (a metadata key), or None when it can."""
    if not value.strip():
        return "is empty"
    if field == "Author":
        if value.strip().lower() in PLACEHOLDER_AUTHORS:
            return f"{value!r} is a placeholder"
        return None
    match = URL.fullmatch(value)
    if not match:
        return f"{value!r} is not an https:// URL"
    if PLACEHOLDER_HOST.search(match["host"]) or PLACEHOLDER_PATH.match(match["path"] or ""):
        return f"{value!r} is a placeholder address"
    return None


def resolve(overrides: dict[str, str | None], publisher_file: Path = PUBLISHER_FILE) -> dict[str, str]:
    """The publisher's metadata by key: the file's values, each replaced by a non-empty override (by
    file key). PublisherError naming every bad value, the file and the variables."""
    try:
        stored = tomllib.loads(publisher_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PublisherError(f"cannot read {publisher_file}: {exc}; restore it from git") from exc
    values = {field: overrides.get(key) or str(stored.get(key, "")) for field, key, _ in FIELDS}
    bad = [
        f"{field} {why} (set {key} in {publisher_file.name} or {variable}=...)"
        for field, key, variable in FIELDS
        if (why := problem(field, values[field]))
    ]
    if bad:
        raise PublisherError(
            f"refusing to publish: {'; '.join(bad)}. Put the real author and the repository's https URLs "
            f"in {publisher_file}, or pass them: make publish BUCKET=... AUTHOR=... HOME_PAGE_URL=... "
            f"SOURCE_CODE_URL=..."
        )
    return values


def semantic_version(template: Path = FUNCTIONS_TEMPLATE) -> str:
    """SemanticVersion of the template's SAR metadata (its one source); PublisherError if invalid."""
    version = yaml_parse(template.read_text(encoding="utf-8")).get("Metadata", {}).get(METADATA, {})
    value = str(version.get("SemanticVersion", ""))
    if not SEMANTIC_VERSION.fullmatch(value):
        raise PublisherError(
            f"{template}: SemanticVersion {value!r} is not MAJOR.MINOR.PATCH: set it in the "
            f"{METADATA} metadata of functions/template.yaml"
        )
    return value


def write(template: Path, values: dict[str, str]) -> str:
    """Set `values` in `template`'s SAR metadata; the version it will be published as."""
    data = yaml_parse(template.read_text(encoding="utf-8"))
    metadata = data.get("Metadata", {}).get(METADATA)
    if not isinstance(metadata, dict):
        raise PublisherError(f"{template} has no {METADATA} metadata: run make build again")
    metadata.update(values)
    template.write_text(yaml_dump(data), encoding="utf-8")
    return semantic_version(template)


def main(argv: Sequence[str] | None = None, publisher_file: Path = PUBLISHER_FILE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "write"])
    parser.add_argument("template", nargs="?", type=Path, help="the built template (write)")
    for _, key, _ in FIELDS:
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key)
    args = parser.parse_args(argv)
    if args.command == "write" and args.template is None:
        parser.error("write needs the built TEMPLATE")
    try:
        values = resolve({key: getattr(args, key) for _, key, _ in FIELDS}, publisher_file)
        version = write(args.template, values) if args.command == "write" else semantic_version()
    except PublisherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Publishing version {version} (SemanticVersion, functions/template.yaml) as {values['Author']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
