"""scripts/local_invoke.py itself, under the real emulator, with a stand-in build directory:
environment precedence, timeouts, crashes, and invokes running side by side."""

from __future__ import annotations

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

TEMPLATE = """\
Globals:
  Function:
    Timeout: 2
    MemorySize: 256
    Environment:
      Variables:
        MOUNT_ROOT: !Ref LocalMountPath
        REQUIRE_MOUNT: "true"
        FROM_TEMPLATE: template
        OVERRIDDEN: template
        FROM_PARAMETERS: !Ref Something
Resources:
  WriterFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: WriterFunction
"""
HANDLER = """\
import os
import time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("status"):
        return {"statusCode": event["status"], "error": "as asked"}
    names = ("MOUNT_ROOT", "REQUIRE_MOUNT", "FROM_TEMPLATE", "OVERRIDDEN", "FROM_PARAMETERS",
             "UNDECLARED", "AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
             "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_PROFILE")
    return {"statusCode": 200, "env": {name: os.environ.get(name) for name in names}}
"""


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """A build directory shaped like sam build's output (the functions under their nested
    application's folder), with a handler that reports its env."""
    build = tmp_path / "build"
    app = build / "Functions"
    (app / "WriterFunction").mkdir(parents=True)
    (app / "SharedLayer" / "python").mkdir(parents=True)
    (app / "template.yaml").write_text(TEMPLATE)
    (app / "WriterFunction" / "app.py").write_text(textwrap.dedent(HANDLER))
    env = {
        "Parameters": {"FROM_PARAMETERS": "parameters", "OVERRIDDEN": "parameters", "UNDECLARED": "x"},
        "WriterFunction": {"OVERRIDDEN": "function", "MOUNT_ROOT": "/tmp/s3data"},
    }
    (tmp_path / "env.json").write_text(json.dumps(env))
    return build


def run(local_invoke: ModuleType, build: Path, event: dict) -> object:
    return local_invoke.invoke(
        "writer",
        event,
        build_dir=build,
        mount_root=build.parent / "s3data",
        env_file=build.parent / "env.json",
    )


def test_environment_follows_sam_precedence_then_local_settings(
    local_invoke: ModuleType, fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    result = run(local_invoke, fake_build, {})
    assert result.ok, result.logs
    assert result.payload["env"] == {
        "MOUNT_ROOT": str((fake_build.parent / "s3data").resolve()),
        "REQUIRE_MOUNT": "false",
        "FROM_TEMPLATE": "template",
        "OVERRIDDEN": "function",
        "FROM_PARAMETERS": "parameters",
        "UNDECLARED": None,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "2",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_ACCESS_KEY_ID": "local-invoke-fake",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_PROFILE": None,
    }
    assert (fake_build.parent / "s3data").is_dir()


def test_a_timeout_is_a_failure(local_invoke: ModuleType, fake_build: Path) -> None:
    result = run(local_invoke, fake_build, {"sleep": 5})
    assert not result.ok
    assert result.function_error
    assert "timed out" in str(result.payload)


def test_an_exception_is_a_failure_with_the_logs(local_invoke: ModuleType, fake_build: Path) -> None:
    result = run(local_invoke, fake_build, {"raise": "broken on purpose"})
    assert not result.ok
    assert result.function_error
    assert result.payload["errorType"] == "ValueError"
    assert "broken on purpose" in result.logs


def test_invokes_can_run_side_by_side(local_invoke: ModuleType, fake_build: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: run(local_invoke, fake_build, {"sleep": 0.5}), range(3)))
    assert [result.ok for result in results] == [True, True, True], [r.logs for r in results]


def test_an_oversized_request_is_refused_like_lambda_without_running(
    local_invoke: ModuleType, fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_emulator() -> None:
        raise AssertionError("the emulator must not start for a request Lambda refuses")

    monkeypatch.setattr(local_invoke, "find_rie", no_emulator)
    result = run(local_invoke, fake_build, {"padding": "x" * 6_291_456})
    assert not result.ok
    assert result.payload["errorType"] == "RequestEntityTooLargeException"
    assert "smaller than 6291456 bytes" in result.payload["errorMessage"]
    assert "6,291,471 bytes" in result.payload["errorMessage"]


def cli(local_invoke: ModuleType, build: Path, event: object, *extra: str) -> int:
    event_file = build.parent / "writer-event.json"  # named for the writer, which it runs
    event_file.write_text(json.dumps(event))
    args = [
        "--event",
        str(event_file),
        "--build-dir",
        str(build),
        "--env-file",
        str(build.parent / "env.json"),
    ]
    return local_invoke.main([*args, "--mount-root", str(build.parent / "s3data"), *extra])


@pytest.mark.parametrize(
    ("event", "code"),
    [({}, 0), ({"status": 400}, 1), ({"status": 404}, 1), ({"status": 413}, 1), ({"raise": "x"}, 1)],
    ids=["200", "400", "404", "413", "raised"],
)
def test_exit_codes(local_invoke: ModuleType, fake_build: Path, event: dict, code: int) -> None:
    assert cli(local_invoke, fake_build, event) == code


def test_setup_failures_exit_2(local_invoke: ModuleType, fake_build: Path, tmp_path: Path) -> None:
    assert local_invoke.main(["--event", str(tmp_path / "writer-missing.json")]) == 2
    assert cli(local_invoke, tmp_path / "no-build", {}) == 2


def test_quiet_success_loud_failure(
    local_invoke: ModuleType, fake_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(local_invoke, fake_build, {}) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["statusCode"] == 200
    # The answer, then one line of real timings: no emulator log on success.
    assert err.startswith("timings: init ") and "invoke " in err and err.count("\n") == 1, err
    assert cli(local_invoke, fake_build, {"raise": "broken on purpose"}) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["errorType"] == "ValueError"
    assert "broken on purpose" in err and "error: the invocation failed" in err
    # The emulator's REPORT line claims the whole memory as used and no init time: never shown.
    assert "Max Memory Used" not in err and "Init Duration" not in err
