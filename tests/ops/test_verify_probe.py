"""Data-path steps of verify.py: writer invoke (with mount retries), reader round trip, export, logs."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import ANY
from s3files_ops.checklist import Clock, Status
from s3files_ops.probe import (
    INVOKE_FIXES,
    LOG_SCOPE,
    check_export,
    check_reader,
    check_writer,
    make_probe,
    scan_logs,
)
from verify_fakes import BUCKET, invoke_response

if TYPE_CHECKING:
    from botocore.stub import Stubber
    from verify_fakes import FakeClock

PROBE = {"id": "verify-probe-20261127T040516Z", "source": "verify.py"}
KEY = "documents/2026/11/27/verify-probe-20261127T040516Z.json"
WRITTEN = {"statusCode": 200, "committed_path": f"/mnt/s3data/{KEY}", "key": KEY, "bytes": 60, "sha256": "ab"}
PREFIX = f"s3://{BUCKET}/lambda/"


def _clock(fake: FakeClock) -> Clock:
    return Clock(now=fake.now, sleep=fake.sleep)


def _expect_invoke(function: str, event: Any) -> dict[str, Any]:
    return {
        "FunctionName": function,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(event).encode(),
    }


def _mount_error(stub: Stubber, code: str, status: int) -> None:
    stub.add_client_error(
        "invoke", service_error_code=code, service_message=f"{code} message", http_status_code=status
    )


def test_probe_id_is_a_valid_document_id_stamped_in_utc() -> None:
    probe = make_probe(1_795_752_316.4)  # 2026-11-27T04:05:16Z
    assert probe["id"] == "verify-probe-20261127T040516Z"
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", probe["id"])


def test_writer_passes_and_returns_the_key(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    stub.add_response("invoke", invoke_response(WRITTEN), _expect_invoke("writer", PROBE))
    result = check_writer(client, "writer", PROBE, _clock(clock))
    assert result.status is Status.PASS
    assert result.data == KEY
    assert WRITTEN["committed_path"] in result.detail


# Each mount error of the Invoke API, its status, and words its fix must have (the facts file: what
# each means).
MOUNT_ERRORS = {
    "S3FilesMountTimeoutException": (408, ["3-5 minutes", "wait a minute"]),
    "S3FilesMountConnectivityException": (
        408,
        [
            "no network path",
            "egress TCP 2049 to MountTargetSecurityGroup",
            "ingress TCP 2049 from FunctionSecurityGroup",
            "MountTargetA/MountTargetB",
        ],
    ),
    "S3FilesMountFailureException": (
        403,
        ["s3files:ClientMount", "s3files:AccessPointArn", "FileSystemPolicy", "RootDirectory", "PosixUser"],
    ),
}


def test_every_mount_error_has_its_own_fix() -> None:
    fixes = {code: INVOKE_FIXES[code] for code in MOUNT_ERRORS}
    assert len(set(fixes.values())) == len(MOUNT_ERRORS)
    for code, (_, words) in MOUNT_ERRORS.items():
        assert all(word in fixes[code] for word in words), code


@pytest.mark.parametrize("code", sorted(MOUNT_ERRORS))
def test_each_mount_error_is_retried_with_backoff_and_warns_with_its_fix(
    lam: tuple[Any, Stubber], clock: FakeClock, code: str
) -> None:
    client, stub = lam
    _mount_error(stub, code, MOUNT_ERRORS[code][0])
    _mount_error(stub, code, MOUNT_ERRORS[code][0])
    stub.add_response(
        "invoke", invoke_response(WRITTEN), {"FunctionName": "writer", "InvocationType": ANY, "Payload": ANY}
    )
    lines: list[str] = []
    result = check_writer(client, "writer", PROBE, _clock(clock), progress=lines.append)
    stub.assert_no_pending_responses()
    assert result.status is Status.WARN, result.detail
    assert result.data == KEY
    assert f"after retrying {code} x2" in result.detail
    assert result.remediation == f"if {code} returns later: {INVOKE_FIXES[code]}"
    assert clock.sleeps == [10, 20]
    assert lines == [
        f"[WARN] writer: {code} (attempt {n}/6), retrying in {delay}s; if it lasts: {INVOKE_FIXES[code]}"
        for n, delay in ((1, 10), (2, 20))
    ]


def test_mixed_mount_errors_each_name_their_fix(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    _mount_error(stub, "S3FilesMountTimeoutException", 408)
    _mount_error(stub, "S3FilesMountConnectivityException", 408)
    answer = {"statusCode": 200, "key": KEY, "document": PROBE}
    stub.add_response("invoke", invoke_response(answer), _expect_invoke("reader", {"key": KEY}))
    result = check_reader(client, "reader", KEY, PROBE, _clock(clock), progress=lambda _: None)
    assert result.status is Status.WARN, result.detail
    assert "S3FilesMountConnectivityException x1, S3FilesMountTimeoutException x1" in result.detail
    for code in ("S3FilesMountConnectivityException", "S3FilesMountTimeoutException"):
        assert f"if {code} returns later: {INVOKE_FIXES[code]}" in result.remediation


@pytest.mark.parametrize("code", sorted(MOUNT_ERRORS))
def test_a_lasting_mount_error_fails_after_the_last_attempt_with_its_fix(
    lam: tuple[Any, Stubber], clock: FakeClock, code: str
) -> None:
    client, stub = lam
    for _ in range(4):
        _mount_error(stub, code, MOUNT_ERRORS[code][0])
    result = check_writer(client, "writer", PROBE, _clock(clock), attempts=4, progress=lambda _: None)
    stub.assert_no_pending_responses()
    assert result.status is Status.FAIL
    assert f"attempt 4/4): {code}" in result.detail
    assert result.remediation == INVOKE_FIXES[code]
    assert clock.sleeps == [10, 20, 40]


def test_the_default_retries_span_a_few_minutes(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    for _ in range(6):
        _mount_error(stub, "S3FilesMountConnectivityException", 408)
    result = check_writer(client, "writer", PROBE, _clock(clock), progress=lambda _: None)
    assert result.status is Status.FAIL
    assert clock.sleeps == [10, 20, 40, 60, 60]


def test_other_invoke_errors_are_not_retried(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    _mount_error(stub, "AccessDeniedException", 403)
    result = check_writer(client, "writer", PROBE, _clock(clock))
    assert result.status is Status.FAIL
    assert "lambda:InvokeFunction on writer" in result.remediation
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ({"errorType": "MountError", "errorMessage": "/mnt/s3data is not a mount point"}, "LocalMountPath"),
        (
            {"errorType": "PermissionError", "errorMessage": "[Errno 13] Permission denied"},
            "s3files:ClientWrite",
        ),
        ({"errorMessage": "2026-11-27T04:05:19Z abc Task timed out after 3.00 seconds"}, "Timeout"),
        ({"errorType": "KeyError", "errorMessage": "'x'"}, "writer's CloudWatch log group"),
    ],
)
def test_writer_function_error_fails_with_its_message(
    lam: tuple[Any, Stubber], clock: FakeClock, error: dict[str, str], fix: str
) -> None:
    client, stub = lam
    stub.add_response("invoke", invoke_response(error, "Unhandled"), _expect_invoke("writer", PROBE))
    result = check_writer(client, "writer", PROBE, _clock(clock))
    assert result.status is Status.FAIL
    assert error["errorMessage"] in result.detail
    assert fix in result.remediation


def test_writer_400_is_a_failure_naming_the_variables(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    stub.add_response(
        "invoke",
        invoke_response({"statusCode": 400, "error": "bad id"}),
        _expect_invoke("writer", PROBE),
    )
    result = check_writer(client, "writer", PROBE, _clock(clock))
    assert result.status is Status.FAIL
    assert "bad id" in result.detail
    assert "ID_FIELD" in result.remediation


def test_reader_passes_when_it_returns_the_probe(lam: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stub = lam
    answer = {"statusCode": 200, "key": KEY, "document": PROBE}
    stub.add_response("invoke", invoke_response(answer), _expect_invoke("reader", {"key": KEY}))
    result = check_reader(client, "reader", KEY, PROBE, _clock(clock))
    assert result.status is Status.PASS, result.detail


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": 200, "key": KEY, "document": {"id": "verify-probe-20261127T040516Z", "source": "old"}},
        {"statusCode": 404, "error": "not found"},
    ],
)
def test_reader_mismatch_fails(lam: tuple[Any, Stubber], clock: FakeClock, answer: dict[str, Any]) -> None:
    client, stub = lam
    stub.add_response("invoke", invoke_response(answer), _expect_invoke("reader", {"key": KEY}))
    result = check_reader(client, "reader", KEY, PROBE, _clock(clock))
    assert result.status is Status.FAIL
    assert KEY in result.detail
    assert json.dumps(answer)[:40] in result.detail
    assert "AccessPointArn" in result.remediation
    assert "MOUNT_ROOT" in result.remediation


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_export_waits_until_the_object_appears(s3: Any, clock: FakeClock) -> None:
    def export_on_third_sleep(count: int) -> None:
        if count == 3:
            s3.put_object(Bucket=BUCKET, Key=f"lambda/{KEY}", Body=json.dumps(PROBE).encode())

    clock.on_sleep = export_on_third_sleep
    lines: list[str] = []
    result = check_export(s3, PREFIX, KEY, PROBE, _clock(clock), 180, poll_seconds=10, progress=lines.append)
    assert result.status is Status.PASS, result.detail
    assert f"s3://{BUCKET}/lambda/{KEY} present after 30s" in result.detail
    assert "60 s after the last write" in lines[0]


def test_export_that_never_happens_explains_the_60_second_rule(s3: Any, clock: FakeClock) -> None:
    result = check_export(
        s3, PREFIX, KEY, PROBE, _clock(clock), 180, poll_seconds=10, progress=lambda _: None
    )
    assert result.status is Status.FAIL
    assert f"s3://{BUCKET}/lambda/{KEY} did not appear within 180s" in result.detail
    assert "60 s after its last write" in result.detail
    assert "PendingExports" in result.remediation
    assert "s3:PutObject*" in result.remediation
    assert sum(clock.sleeps) == 180


def test_export_with_other_content_fails(s3: Any, clock: FakeClock) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"lambda/{KEY}", Body=b'{"id": "someone-else"}')
    result = check_export(s3, PREFIX, KEY, PROBE, _clock(clock), progress=lambda _: None)
    assert result.status is Status.FAIL
    assert "differs from the probe" in result.detail
    assert "S3 wins" in result.remediation


@pytest.fixture
def logs(aws: None, clock: FakeClock) -> Any:
    client = boto3.client("logs", region_name="us-east-1")
    for fn in ("writer", "reader"):
        client.create_log_group(logGroupName=f"/aws/lambda/{fn}")
        client.create_log_stream(logGroupName=f"/aws/lambda/{fn}", logStreamName="s")
    return client


def _log(logs: Any, fn: str, clock: FakeClock, *messages: str, offset_ms: int = 1000) -> None:
    at = int(clock.now() * 1000) + offset_ms
    events = [{"timestamp": at, "message": m} for m in messages]
    logs.put_log_events(logGroupName=f"/aws/lambda/{fn}", logStreamName="s", logEvents=events)


GROUPS = ["/aws/lambda/writer", "/aws/lambda/reader", "/aws/lambda/janitor"]


def test_logs_with_permission_denied_fail_with_count_and_sample(logs: Any, clock: FakeClock) -> None:
    _log(
        logs,
        "writer",
        clock,
        "START RequestId: 1",
        "[ERROR] PermissionError: [Errno 13] Permission denied: 'x'",
    )
    _log(logs, "reader", clock, "open failed: EACCES")
    result = scan_logs(logs, GROUPS, int(clock.now() * 1000))
    assert result.status is Status.FAIL
    assert "2 permission denials" in result.detail
    assert "/aws/lambda/writer: [ERROR] PermissionError: [Errno 13] Permission denied" in result.detail
    assert "no log group yet: /aws/lambda/janitor" in result.detail
    assert "s3files:ClientWrite" in result.remediation


def test_logs_count_task_timeouts_and_mount_failures(logs: Any, clock: FakeClock) -> None:
    _log(
        logs, "writer", clock, "abc Task timed out after 3.00 seconds", "S3FilesMountConnectivityException x"
    )
    result = scan_logs(logs, GROUPS, int(clock.now() * 1000))
    assert result.status is Status.FAIL
    assert "1 mount failures" in result.detail
    assert "1 task timeouts" in result.detail
    assert "Timeout" in result.remediation


def test_logs_with_only_mount_timeouts_warn(logs: Any, clock: FakeClock) -> None:
    _log(logs, "writer", clock, "INIT error S3FilesMountTimeoutException")
    result = scan_logs(logs, GROUPS, int(clock.now() * 1000))
    assert result.status is Status.WARN
    assert "1 mount timeouts" in result.detail


def test_logs_before_the_verification_are_ignored(logs: Any, clock: FakeClock) -> None:
    _log(logs, "writer", clock, "Permission denied", offset_ms=-60_000)
    _log(logs, "writer", clock, "committed")
    result = scan_logs(logs, GROUPS[:2], int(clock.now() * 1000))
    assert result.status is Status.PASS, result.detail
    assert result.detail == (
        "none since the verification started in /aws/lambda/writer, /aws/lambda/reader; "
        f"this audit {LOG_SCOPE}"
    )


def test_the_log_audit_says_it_cannot_see_the_invoke_mount_errors(logs: Any, clock: FakeClock) -> None:
    _log(logs, "writer", clock, "Permission denied")
    result = scan_logs(logs, GROUPS[:2], int(clock.now() * 1000))
    assert result.status is Status.FAIL
    assert result.detail.endswith(f"this audit {LOG_SCOPE}")
    assert "not the S3FilesMount* invoke errors, which go to the caller" in LOG_SCOPE
