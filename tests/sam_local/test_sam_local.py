"""Every sample event through `sam local invoke`, and `sam local start-lambda` with boto3, on the
project's Docker engine and the stand-in base image.

Each answer is judged by its body (errorType, statusCode, committed_path), never by sam's exit
code: `sam local invoke` exits 0 when the function raises, which is what some events promise. Each
`sam local invoke` container starts empty, so what a reader answers here is what events/README.md
promises for an empty mount root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from samkit import ENV_FILE, EVENTS, INVOKE_TIMEOUT_SECONDS, SAM, mount_root, sam_function_id
from testkit import REPO, check_answer, sample_answers

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sam_engine.engine import Engine
    from samkit import Invocation
    from testkit import SampleAnswer

KEY = re.compile(r"documents/(\d{4}/\d{2}/\d{2})/([A-Za-z0-9][A-Za-z0-9._-]*)\.json")
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


PROMISED = sample_answers()


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def assert_answer(answer: SampleAnswer, event: Any, body: Any) -> None:
    """What events/README.md promises for the event in a fresh container (testkit.check_answer),
    and what an empty mount root lets show of what the answer names: the archive an error is about,
    the document a commit stored."""
    check_answer(answer, body)
    if answer.raises is not None and isinstance(event, dict) and "archive" in event:
        assert repr(event["archive"]) in body["errorMessage"], body
    if answer.status == 200 and "committed_path" in body:
        assert_committed(event, body)


def assert_committed(event: Any, body: dict[str, Any]) -> None:
    """The writer committed exactly the event, under today's partition of MOUNT_ROOT."""
    match = KEY.fullmatch(body["key"])
    assert match, body
    assert body["committed_path"] == f"{mount_root()}/{body['key']}"
    today = {time.strftime("%Y/%m/%d", time.gmtime(time.time() + delta)) for delta in (-600, 0)}
    assert match.group(1) in today, body
    if "id" in event:
        assert match.group(2) == event["id"], body
    else:
        assert REQUEST_ID.fullmatch(match.group(2)), body  # named after the request id
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    assert (body["bytes"], body["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("answer", PROMISED, ids=[row.event for row in PROMISED])
def test_sam_local_invoke_answers_what_events_readme_promises(
    sam_invoke: Callable[..., Invocation], answer: SampleAnswer
) -> None:
    invocation = sam_invoke(answer.function, EVENTS / answer.event)
    assert_answer(answer, load(answer.event), invocation.body)


def test_a_missing_mount_root_fails_the_invoke(sam_invoke: Callable[..., Invocation], tmp_path: Path) -> None:
    # The original bug: MOUNT_ROOT at a directory no container has. The function raises, and only
    # the body says so: sam still exits 0.
    env = json.loads(ENV_FILE.read_text())
    env["Parameters"]["MOUNT_ROOT"] = "/tmp/s3data"
    broken = tmp_path / "env.json"
    broken.write_text(json.dumps(env))
    answer = sam_invoke("writer", EVENTS / "writer-with-id.json", env_file=broken)
    assert answer.body["errorType"] == "MountError", answer.body
    assert "MOUNT_ROOT=/tmp/s3data does not exist" in answer.body["errorMessage"]
    assert answer.exit_code == 0


def test_without_env_vars_the_mount_error_names_the_env_vars_file(
    sam_invoke: Callable[..., Invocation],
) -> None:
    # The template's MOUNT_ROOT=/mnt/s3data exists only where Lambda mounts S3 Files: under sam local
    # (AWS_SAM_LOCAL=true) the error names the local fix, not the deployed configuration.
    answer = sam_invoke("writer", EVENTS / "writer-with-id.json", env_file=None)
    assert answer.body["errorType"] == "MountError", answer.body
    message = answer.body["errorMessage"]
    assert "MOUNT_ROOT=/mnt/s3data does not exist in this container" in message
    assert "--env-vars events/env.json" in message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_lambda_serves_boto3_and_the_readme_client(
    sam_env: dict[str, str], template: Path, engine: Engine, tmp_path: Path
) -> None:
    """The start-lambda example of docs/local-development.md, flags as written (--env-vars
    events/env.json --skip-pull-image), served to boto3 and to the page's client, scripts/local_invoke.py."""
    port = free_port()
    command = [str(SAM), "local", "start-lambda", "--template", str(template), "--env-vars", str(ENV_FILE)]
    command += ["--skip-pull-image", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "start-lambda.log").open("w+")
    server = subprocess.Popen(
        command, env=sam_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            assert server.poll() is None and time.monotonic() < deadline, log_text(log)
            time.sleep(0.2)
        client = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"max_attempts": 1}, read_timeout=INVOKE_TIMEOUT_SECONDS),
        )
        for answer in PROMISED:
            if answer.event in {"writer-with-id.json", "writer-invalid-id.json", "janitor.json"}:
                payload = (EVENTS / answer.event).read_bytes()
                response = client.invoke(FunctionName=sam_function_id(answer.function), Payload=payload)
                assert "FunctionError" not in response, (response, log_text(log))
                assert_answer(answer, load(answer.event), json.loads(response["Payload"].read()))
        # The page's client: no aws CLI, credentials or Region needed (the local API checks none).
        readme_client = [sys.executable, str(REPO / "scripts" / "local_invoke.py")]
        readme_client += [
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
            "--event",
            "events/writer-with-id.json",
        ]
        done = subprocess.run(
            readme_client,
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            capture_output=True,
            text=True,
            timeout=INVOKE_TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr, log_text(log))
        writer = next(answer for answer in PROMISED if answer.event == "writer-with-id.json")
        assert_answer(writer, load(writer.event), json.loads(done.stdout))
    finally:
        stop(server)
    # sam removed its containers when it stopped.
    assert engine.client().containers.list(all=True) == []


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def log_text(log: Any) -> str:
    log.seek(0)
    return str(log.read())


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to sam's process group (sam removes its containers), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
