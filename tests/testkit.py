"""What the test folders share: a fake Lambda context, loading repository files by path, and the
offline SAM transform."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform as sam_transform

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
# The functions of functions/template.yaml by logical id: the template, build and SAR tests check each
# of them (tests/template/test_template_parameters.py holds this list to the template itself).
FUNCTION_IDS = ("WriterFunction", "ReaderFunction", "JanitorFunction", "UnzipFunction")


@dataclass
class FakeContext:
    """The LambdaContext attributes the handlers and Powertools use."""

    aws_request_id: str = "8c5a9b2e-1f3d-4d8a-9c1e-0123456789ab"
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb: int = 512
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/27/[$LATEST]0123"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def write_zip(
    path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A zip archive at `path` holding `members` in order (names are stored exactly as given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def readme_blocks(section: str, language: str) -> list[str]:
    """The ```language code blocks of README.md's section ``## section``, in order."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(rf"^```{language}\n(.*?)^```$", text[start : end if end >= 0 else None], re.M | re.S)


def load_module(name: str, path: Path) -> ModuleType:
    """Import the file at ``path`` as module ``name`` (handlers and scripts are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py under a unique module name (all three files are app.py)."""
    return load_module(f"{name}_app", REPO / "functions" / name / "app.py")


class _OfflinePolicyLoader(ManagedPolicyLoader):
    """The templates name no managed policy, so nothing has to be looked up in IAM."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)  # type: ignore[arg-type]

    def load(self) -> dict[str, str]:
        return {}


PACKAGED_URIS = {
    "CodeUri": "s3://artifacts-bucket/artifact.zip",
    "ContentUri": "s3://artifacts-bucket/artifact.zip",
    "Location": "https://artifacts-bucket.s3.us-east-1.amazonaws.com/nested.template",
}


def transform(sam: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """samtranslator's CloudFormation for ``sam``, in-process and offline (the argument is untouched;
    local code URIs and nested template paths become fake S3 URLs, as after `sam package`)."""
    fragment = copy.deepcopy(sam)
    for resource in fragment["Resources"].values():
        properties = resource.get("Properties", {})
        for key, packaged in PACKAGED_URIS.items():
            if isinstance(properties.get(key), str) and not properties[key].startswith(("s3://", "https://")):
                properties[key] = packaged
    return sam_transform(fragment, dict(parameters), _OfflinePolicyLoader())
