"""What the test folders share: a fake Lambda context, loading repository files by path, and the
offline SAM transform."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform as sam_transform
from template_functions import functions

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
# The functions of functions/template.yaml by logical id, read from it (scripts/template_functions.py):
# the template, build, end-to-end and SAR tests check each of them.
FUNCTION_IDS = tuple(function.logical_id for function in functions().values())


@dataclass(frozen=True)
class SampleAnswer:
    """What a sample event answers on an empty mount root, as events/README.md's table promises."""

    event: str  # its file name under events/
    function: str
    status: int | None  # the statusCode answered, or None when it raises
    raises: str | None  # the errorType raised (Lambda retries the event)
    fields: dict[str, Any]  # what else the answer holds: the cell's `"name": value` fragments


def sample_answers(readme: Path = EVENTS / "README.md") -> list[SampleAnswer]:
    """The rows of events/README.md's table whose last column (what `sam local invoke` answers in a
    fresh container, and so what any empty mount root answers) is a statusCode ("404 ...") or
    "raises `NotFoundError`", with the JSON members quoted in it (`"keys": []`)."""
    rows = []
    for line in readme.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[1] not in functions():
            continue
        status = re.match(r"\d{3}\b", cells[3])
        raised = re.match(r"raises `(\w+)`", cells[3])
        if not (status or raised):
            continue
        fields: dict[str, Any] = {}
        for fragment in re.findall(r'`("[^`]*)`', cells[3]):
            fields |= json.loads(f"{{{fragment}}}")
        rows += [
            SampleAnswer(
                name,
                cells[1],
                int(status.group()) if status else None,
                raised.group(1) if raised else None,
                fields,
            )
            for name in re.findall(r"`([\w.-]+\.json)`", cells[0])
        ]
    return rows


def check_answer(answer: SampleAnswer, body: Any) -> None:
    """Assert that `body`, a function's answer to `answer.event`, is what the table promises."""
    assert isinstance(body, dict), body
    if answer.raises is not None:
        assert body.get("errorType") == answer.raises, body
    else:
        assert "errorType" not in body, body
        assert body.get("statusCode") == answer.status, body
        if answer.status is not None and answer.status >= 400:
            assert set(body) == {"statusCode", "error"}, body
    assert {name: body.get(name) for name in answer.fields} == answer.fields, body


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


def docs_blocks(page: str, section: str, language: str) -> list[str]:
    """The ```language code blocks of the documentation page docs/<page>'s section ``## section``, in
    order."""
    text = (REPO / "docs" / page).read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(rf"^```{language}\n(.*?)^```$", text[start : end if end >= 0 else None], re.M | re.S)


def copy_project(destination: Path) -> Path:
    """A clean copy of the project at `destination`, as a fresh clone of this working tree would be:
    the files git tracks or would track (no .venv, .aws-sam, .local or caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not in a clone of it
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run_make(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """make in ``cwd`` as from a user's shell (no MAKELEVEL, which `make test` sets: hints speak make
    when it is there) and with the project's venv as it is (-o .venv/.stamp: never reinstalled)."""
    env = {k: v for k, v in (env or os.environ).items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.stamp", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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


def no_account() -> dict[str, str]:
    """This environment as a new user's machine has it: no credentials or AWS config files (the Region
    stays), and every AWS endpoint a closed local port, so that nothing can leave the machine."""
    credentials = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
    return {k: v for k, v in os.environ.items() if k not in credentials and k != "AWS_PROFILE"} | {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
