"""scripts/local_invoke.py itself, under the real emulator, with a stand-in build directory:
environment precedence, timeouts, crashes, and invokes running side by side."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ClassVar

import pytest
from testkit import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType

SCRIPT = REPO / "scripts" / "local_invoke.py"

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


def test_hints_name_make_variables_under_make(
    local_invoke: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = str(tmp_path / "writer-missing.json")
    monkeypatch.delenv("MAKELEVEL", raising=False)
    assert local_invoke.main(["--event", missing]) == 2
    assert "Pass --event <a JSON file>." in capsys.readouterr().err
    monkeypatch.setenv("MAKELEVEL", "1")  # make sets it for its recipes: `make invoke EVENT=...`
    assert local_invoke.main(["--event", missing]) == 2
    err = capsys.readouterr().err
    assert "Pass EVENT=<a JSON file>." in err and "--event" not in err


@pytest.mark.parametrize(
    ("event", "code"), [({}, 0), ({"raise": "broken on purpose"}, 1)], ids=["ok", "raised"]
)
def test_output_order_does_not_depend_on_buffering(fake_build: Path, event: dict, code: int) -> None:
    """The notes first (stderr, written at once), the answer last (stdout), whether stdout is
    buffered (a pipe: `make invoke | cat`) or not: both streams into one pipe show the program's order."""
    event_file = fake_build.parent / "writer-event.json"
    event_file.write_text(json.dumps(event))
    command = [sys.executable, str(SCRIPT), "--event", str(event_file), "--build-dir", str(fake_build)]
    command += ["--env-file", str(fake_build.parent / "env.json")]
    command += ["--mount-root", str(fake_build.parent / "s3data")]
    outputs = []
    for unbuffered in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        done = subprocess.run(
            command,
            env=env | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, done.stdout
        notes, brace, answer = done.stdout.partition("\n{")
        assert brace, done.stdout
        json.loads(brace.strip() + answer)  # the answer, whole, is last
        assert "timings: init " in notes, done.stdout
        outputs.append(notes.splitlines())
    # The same lines in the same order (the timings' numbers aside).
    assert [line.split(":")[0] for line in outputs[0]] == [line.split(":")[0] for line in outputs[1]]
    if code:
        assert outputs[0][-1] == "error: the invocation failed (Unhandled); its answer follows."


class _StartLambdaStub(http.server.BaseHTTPRequestHandler):
    """Stands in for `sam local start-lambda`'s Invoke API: echoes the event as the answer, or answers
    a function error like Lambda (X-Amz-Function-Error) when the event asks."""

    requests: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, body))
        event = json.loads(body)
        self.send_response(200)
        if "raise" in event:
            self.send_header("X-Amz-Function-Error", "Unhandled")
            answer = {"errorType": "ValueError", "errorMessage": event["raise"]}
        else:
            answer = {"statusCode": event.get("status", 200), "echo": event}
        data = json.dumps(answer).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def start_lambda_stub() -> Iterator[str]:
    _StartLambdaStub.requests.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StartLambdaStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_endpoint_url_invokes_through_a_lambda_api(
    local_invoke: ModuleType, start_lambda_stub: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = tmp_path / "writer-with-id.json"
    event_file.write_text(json.dumps({"id": "order-1"}))
    args = [
        "--event",
        str(event_file),
        "--endpoint-url",
        start_lambda_stub,
        "--build-dir",
        str(tmp_path / "none"),
    ]
    assert local_invoke.main(args) == 0  # no build needed: the Lambda API runs the function
    out, err = capsys.readouterr()
    assert json.loads(out) == {"statusCode": 200, "echo": {"id": "order-1"}}
    assert err == ""  # no emulator here, so no timings
    # The Invoke operation's path, with the function's id as sam local names it, and the event as body.
    assert _StartLambdaStub.requests == [
        ("/2015-03-31/functions/Functions/WriterFunction/invocations", b'{"id": "order-1"}')
    ]
    event_file.write_text(json.dumps({"status": 400}))
    assert local_invoke.main(args) == 1
    assert "error: the function answered statusCode 400." in capsys.readouterr().err
    event_file.write_text(json.dumps({"raise": "broken on purpose"}))
    assert local_invoke.main(args) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["errorMessage"] == "broken on purpose"
    assert "the invocation failed (Unhandled)" in err


def test_endpoint_url_with_nothing_listening_says_to_start_lambda(
    local_invoke: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, bound by nobody now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert local_invoke.main(["--endpoint-url", f"http://127.0.0.1:{port}"]) == 2
    assert "start `sam local start-lambda` there first" in capsys.readouterr().err
    assert local_invoke.main(["--endpoint-url", "file:///etc/passwd"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err
