"""The whole verify checklist through main(): exit codes, SKIP propagation, printed fixes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from s3files_ops.checklist import Clock
from s3files_ops.probe import make_probe
from template_functions import functions
from verify import Clients, main
from verify_fakes import (
    BUCKET,
    DASHBOARD_URL,
    both_targets,
    create_stack,
    function_config,
    invoke_response,
    stub_status,
)

if TYPE_CHECKING:
    from botocore.stub import Stubber
    from verify_fakes import FakeClock, Net

FUNCTIONS = tuple(functions())  # create_stack's output values: each function's name


@pytest.fixture
def deployed(net: Net, ec2: Any, s3files: tuple[Any, Stubber], lam: tuple[Any, Stubber]) -> Clients:
    """A stack whose infrastructure checks pass; each test queues the invokes it needs."""
    create_stack(net)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    logs = boto3.client("logs", region_name="us-east-1")
    for fn in ("writer", "reader"):
        logs.create_log_group(logGroupName=f"/aws/lambda/stack/{fn}")
    stub_status(s3files[1], "available", both_targets(net))
    for fn in FUNCTIONS:
        lam[1].add_response("get_function_configuration", function_config(fn, net), {"FunctionName": fn})
    return Clients(
        cloudformation=boto3.client("cloudformation", region_name="us-east-1"),
        s3files=s3files[0],
        ec2=ec2,
        lambda_=lam[0],
        s3=boto3.client("s3", region_name="us-east-1"),
        logs=logs,
    )


def _run(
    argv: list[str], clients: Clients, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    code = main(argv, clients=clients, clock=Clock(now=clock.now, sleep=clock.sleep))
    return code, capsys.readouterr().out


def test_happy_path_passes_every_step(
    deployed: Clients, lam: tuple[Any, Stubber], clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = make_probe(clock.now())
    key = f"documents/2026/11/27/{probe['id']}.json"
    written = {
        "statusCode": 200,
        "committed_path": f"/mnt/s3data/{key}",
        "key": key,
        "bytes": 90,
        "sha256": "0",
    }
    stub = lam[1]
    stub.add_response(
        "invoke",
        invoke_response(written),
        {
            "FunctionName": "writer",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(probe).encode(),
        },
    )
    stub.add_response(
        "invoke",
        invoke_response({"statusCode": 200, "key": key, "document": probe}),
        {
            "FunctionName": "reader",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps({"key": key}).encode(),
        },
    )
    deployed.s3.put_object(Bucket=BUCKET, Key=f"lambda/{key}", Body=json.dumps(probe).encode())

    code, out = _run(["--stack", "app"], deployed, clock, capsys)

    assert code == 0, out
    assert out.count("[PASS]") == 8
    assert "fix:" not in out
    # Only the writer's and the reader's log groups exist (deployed).
    missing = ", ".join(f"/aws/lambda/stack/{fn}" for fn in FUNCTIONS if fn not in {"writer", "reader"})
    assert f"no log group yet: {missing}" in out
    assert out.strip().endswith(f"8 pass, 0 fail, 0 warn, 0 skip\nDashboard: {DASHBOARD_URL}")


def test_connectivity_failure_exits_1_and_skips_what_depends_on_the_writer(
    deployed: Clients, lam: tuple[Any, Stubber], clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):  # --invoke-attempts 2: retried once, then it fails
        lam[1].add_client_error(
            "invoke", service_error_code="S3FilesMountConnectivityException", http_status_code=408
        )
    logs = deployed.logs
    logs.create_log_stream(logGroupName="/aws/lambda/stack/writer", logStreamName="s")
    logs.put_log_events(
        logGroupName="/aws/lambda/stack/writer",
        logStreamName="s",
        logEvents=[
            {"timestamp": int(clock.now() * 1000) + 5, "message": "S3FilesMountConnectivityException"}
        ],
    )

    code, out = _run(["verify", "--stack", "app", "--invoke-attempts", "2"], deployed, clock, capsys)

    assert code == 1
    assert "[FAIL] Writer commits a probe document" in out
    assert "[SKIP] Reader reads the probe back (separate invocation)" in out
    assert "[SKIP] Probe exported to S3" in out
    assert "[FAIL] Function logs free of mount/permission/timeout errors" in out
    assert "fix: no network path to a mount target" in out
    assert out.strip().endswith(f"4 pass, 2 fail, 0 warn, 2 skip\nDashboard: {DASHBOARD_URL}")


def test_unknown_stack_fails_first_and_skips_the_rest(
    aws: None, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = Clients.from_session(boto3.Session(region_name="us-east-1"))
    code, out = _run(["--stack", "missing", "--region", "us-east-1"], clients, clock, capsys)
    assert code == 1
    assert "[FAIL] Stack outputs" in out
    assert out.count("[SKIP]") == 7
    assert "fix: check --stack <name> --region <region> --profile <profile>" in out


def test_unknown_profile_exits_2_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "app", "--profile", "no-such-profile"]) == 2
    err = capsys.readouterr().err
    assert "no-such-profile" in err
    assert "--profile" in err


def test_missing_credentials_fail_the_step_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name)
    clients = Clients.from_session(boto3.Session(region_name="us-east-1"))
    code, out = _run(["--stack", "app"], clients, clock, capsys)
    assert code == 1
    assert "[FAIL] Stack outputs" in out
    assert "Unable to locate credentials" in out
    assert "fix: configure credentials" in out
