"""Data-path checks: writer commit, reader round trip, export to S3, and the functions' logs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from s3files_ops.checklist import Clock, Status, StepFailure, StepResult, error_text, stderr_progress, step

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from botocore.client import BaseClient

WRITER = "Writer commits a probe document"
READER = "Reader reads the probe back (separate invocation)"
EXPORT = "Probe exported to S3"
LOGS = "Function logs free of mount/permission/timeout errors"

SG_RULES_FIX = (
    "FunctionSecurityGroup needs egress TCP 2049 to MountTargetSecurityGroup, MountTargetSecurityGroup needs "
    "ingress TCP 2049 from FunctionSecurityGroup, and every function subnet's AZ needs a mount target "
    "(MountTargetA/MountTargetB)"
)
PERMISSION_FIX = (
    "grant the function role s3files:ClientWrite (AmazonS3FilesClientReadWriteAccess), remove any "
    "FileSystemPolicy deny, and make AccessPoint RootDirectory CreationPermissions OwnerUid/OwnerGid match "
    "PosixUser Uid/Gid (parameters PosixUid/PosixGid)"
)
# The three mount errors of the Invoke API (botocore's Lambda model). They are returned to the caller
# and need not reach the function's log group. Each appears for a few minutes after a deploy while
# the mount targets become available, so each is retried; what each means once it lasts:
INVOKE_FIXES = {
    "S3FilesMountConnectivityException": (
        f"no network path to a mount target (security groups, subnets, routing): {SG_RULES_FIX}"
    ),
    "S3FilesMountFailureException": (
        "mount refused (IAM, file system policy, access point): give the function role s3files:ClientMount "
        "(plus s3files:ClientWrite for a function that writes) on the file system with the "
        "s3files:AccessPointArn condition, check the FileSystemPolicy does not deny it, and give AccessPoint "
        "RootDirectory CreationPermissions owned by its PosixUser (a missing root directory without them "
        "fails every mount)"
    ),
    "S3FilesMountTimeoutException": (
        "connected, but the mount timed out: mount targets need 3-5 minutes after a deploy; wait a minute "
        f"and re-run (raise --invoke-attempts); if it persists check that {SG_RULES_FIX}"
    ),
}
MOUNT_ERRORS = frozenset(INVOKE_FIXES)
# Substrings searched in each function's log events; "mount timeouts" only warn (transient after a deploy).
LOG_TERMS = {
    "mount failures": ("S3FilesMountConnectivity", "S3FilesMountFailure", "MountError"),
    "mount timeouts": ("S3FilesMountTimeout",),
    "task timeouts": ("Task timed out",),
    "permission denials": ("Permission denied", "EACCES", "AccessDenied"),
}
LOG_FIXES = {
    "mount failures": f"S3FilesMountConnectivity: {SG_RULES_FIX}; S3FilesMountFailure/MountError: "
    + INVOKE_FIXES["S3FilesMountFailureException"],
    "mount timeouts": "transient right after a deploy; if they continue, check that " + SG_RULES_FIX,
    "task timeouts": "raise the function's Timeout or find the slow call in the logged request",
    "permission denials": PERMISSION_FIX,
}
LOG_FILTER = " ".join(f'?"{term}"' for terms in LOG_TERMS.values() for term in terms)
# What the audit cannot see: the S3FilesMount* errors go to whoever invoked (and need not reach the log
# group), and a mount that fails before the handler runs logs no request of its own.
LOG_SCOPE = (
    "sees what the functions logged (layer errors, errno messages, Lambda's timeouts); not the "
    "S3FilesMount* invoke errors, which go to the caller (the writer and reader steps report them; other "
    "callers see them in their own error handling)"
)


def make_probe(now: float) -> dict[str, str]:
    """The probe document, e.g. {"id": "verify-probe-20261127T040516Z", "source": "verify.py", "at": ...}."""
    stamp = datetime.fromtimestamp(now, UTC)
    return {"id": f"verify-probe-{stamp:%Y%m%dT%H%M%SZ}", "source": "verify.py", "at": stamp.isoformat()}


def _function_error_fix(function: str, error: dict[str, Any]) -> str:
    text = f"{error.get('errorType', '')} {error.get('errorMessage', '')}"
    if "Task timed out" in text:
        return (
            f"raise {function}'s Timeout (a cold start includes the mount) and check its logs for NFS stalls"
        )
    if "Permission denied" in text or "PermissionError" in text:
        return PERMISSION_FIX
    if "MountError" in text:
        return (
            "FileSystemConfigs LocalMountPath must equal the MOUNT_ROOT variable, the role needs "
            f"s3files:ClientMount and s3files:ClientWrite; then {PERMISSION_FIX}"
        )
    return f"read the stack trace in {function}'s CloudWatch log group (its LoggingConfig.LogGroup)"


def invoke_json(
    lambda_: BaseClient,
    function: str,
    event: dict[str, Any],
    clock: Clock,
    attempts: int = 6,
    base_delay: float = 10,
    max_delay: float = 60,
    progress: Callable[[str], None] = stderr_progress,
) -> tuple[Any, Counter[str]]:
    """Invoke synchronously; the decoded response payload and the mount errors retried before it.

    Retries the three S3FilesMount* errors (each transient for a few minutes after a deploy) with
    exponential backoff (10, 20, 40, 60, 60 s by default: about 3 minutes), printing a WARN line with
    that error's fix before each retry; raises StepFailure with that fix once they outlast
    ``attempts``, and at once for any other invoke error or a FunctionError.
    """
    retried: Counter[str] = Counter()
    attempt = 1
    while True:
        try:
            response = lambda_.invoke(
                FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
            )
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in MOUNT_ERRORS or attempt >= attempts:
                raise StepFailure(
                    f"invoking {function} failed (attempt {attempt}/{attempts}): {error_text(exc)}",
                    INVOKE_FIXES.get(
                        code, f"the identity running verify.py needs lambda:InvokeFunction on {function}"
                    ),
                ) from exc
            retried[code] += 1
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            progress(
                f"[WARN] {function}: {code} (attempt {attempt}/{attempts}), retrying in {delay:.0f}s; "
                f"if it lasts: {INVOKE_FIXES[code]}"
            )
            clock.sleep(delay)
            attempt += 1
    body = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        error = body if isinstance(body, dict) else {"errorMessage": str(body)}
        raise StepFailure(
            f"{function} raised {error.get('errorType', 'an error')}: {error.get('errorMessage', '')}",
            _function_error_fix(function, error),
        )
    return body, retried


def _passed(name: str, detail: str, retried: Counter[str], data: Any = None) -> StepResult:
    """PASS, or WARN when mount errors had to be retried first: the fix of each, should they return."""
    if not retried:
        return StepResult(name, Status.PASS, detail, data=data)
    errors = ", ".join(f"{code} x{count}" for code, count in sorted(retried.items()))
    return StepResult(
        name,
        Status.WARN,
        f"{detail}, after retrying {errors} (expected in the first minutes after a deploy)",
        "; ".join(f"if {code} returns later: {INVOKE_FIXES[code]}" for code in sorted(retried)),
        data=data,
    )


@step(WRITER)
def check_writer(
    lambda_: BaseClient, writer: str, probe: dict[str, Any], clock: Clock, **retry: Any
) -> StepResult:
    """PASS (WARN after mount retries) when the writer answers 200 with committed_path and key;
    ``data`` = the key."""
    body, retried = invoke_json(lambda_, writer, probe, clock, **retry)
    if (
        not isinstance(body, dict)
        or body.get("statusCode") != 200
        or not body.get("committed_path")
        or not body.get("key")
    ):
        raise StepFailure(
            f"{writer} answered {json.dumps(body)[:300]} (expected statusCode 200, committed_path, key)",
            "a 400 means the writer rejected the probe: check its ID_FIELD (id) and DOCUMENT_PREFIX "
            "variables; otherwise deploy the current functions/writer",
        )
    detail = f"committed {body['committed_path']} ({body.get('bytes')} bytes)"
    return _passed(WRITER, detail, retried, data=body["key"])


@step(READER)
def check_reader(
    lambda_: BaseClient, reader: str, key: str, probe: dict[str, Any], clock: Clock, **retry: Any
) -> StepResult:
    """PASS (WARN after mount retries) when the reader, in its own invocation, returns exactly the
    probe document for ``key``."""
    body, retried = invoke_json(lambda_, reader, {"key": key}, clock, **retry)
    if isinstance(body, dict) and body.get("statusCode") == 200 and body.get("document") == probe:
        return _passed(READER, f"{reader} returned the probe for {key}", retried)
    raise StepFailure(
        f"{reader} answered {json.dumps(body)[:300]} for {key}, expected the probe {json.dumps(probe)}",
        "writer and reader must mount the same AccessPointArn (FileSystemConfigs) at a LocalMountPath "
        "equal to their MOUNT_ROOT, with the same DOCUMENT_PREFIX",
    )


def _split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/lambda/`` -> ("bucket", "lambda/")."""
    if not url.startswith("s3://"):
        raise StepFailure(
            f"CommittedFilesS3Prefix {url!r} is not an s3:// URL", "redeploy the current template"
        )
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


@step(EXPORT)
def check_export(
    s3: BaseClient,
    committed_prefix: str,
    key: str,
    probe: dict[str, Any],
    clock: Clock,
    wait_seconds: float = 180,
    poll_seconds: float = 10,
    progress: Callable[[str], None] = stderr_progress,
) -> StepResult:
    """Poll until s3://<bucket>/<access point root>/<key> exists and holds the probe document."""
    bucket, prefix = _split_s3_url(committed_prefix)
    url = f"s3://{bucket}/{prefix}{key}"
    started = clock.now()
    while True:
        try:
            body = s3.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise StepFailure(
                    f"cannot read {url}: {error_text(exc)}",
                    "the identity running verify.py needs s3:GetObject on the bucket (and s3:ListBucket, "
                    "else a missing object reads as 403), plus kms:Decrypt on KmsKeyArn if set",
                ) from exc
        else:
            if _json_or_none(body) == probe:
                return StepResult(EXPORT, Status.PASS, f"{url} present after {clock.now() - started:.0f}s")
            raise StepFailure(
                f"{url} differs from the probe: {body[:200]!r}",
                "something else writes this key in S3 (on conflict S3 wins and the file system copy moves to "
                ".s3files-lost+found-<fs-id>): keep S3-side writers out of the access point's prefix",
            )
        waited = clock.now() - started
        if waited >= wait_seconds:
            raise StepFailure(
                f"{url} did not appear within {wait_seconds:.0f}s (S3 Files exports a file 60 s after "
                "its last write, then queues it)",
                "check the file system's CloudWatch metric PendingExports: if it stays above 0, "
                "FileSystemRole needs s3:PutObject* on bucket/* (and kms:GenerateDataKey on KmsKeyArn if "
                "set); otherwise re-run with a larger --export-wait-seconds",
            )
        progress(
            f"  waiting for {url} (export runs 60 s after the last write; {wait_seconds - waited:.0f}s left)"
        )
        clock.sleep(min(poll_seconds, wait_seconds - waited))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@step(LOGS)
def scan_logs(
    logs: BaseClient, log_groups: Sequence[str], since_ms: int, max_events: int = 2000
) -> StepResult:
    """Count mount failures, task timeouts and permission denials logged since ``since_ms`` (FAIL), and mount
    timeouts (WARN: transient after a deploy). A group that does not exist yet is noted, not failed.
    Every detail ends with LOG_SCOPE: what such an audit can and cannot see.
    """
    counts: Counter[str] = Counter()
    samples: dict[str, str] = {}
    absent: list[str] = []
    for group in log_groups:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group,
            startTime=since_ms,
            filterPattern=LOG_FILTER,
            PaginationConfig={"MaxItems": max_events},
        )
        try:
            for event in (e for page in pages for e in page["events"]):
                for category, terms in LOG_TERMS.items():
                    if any(term in event["message"] for term in terms):
                        counts[category] += 1
                        samples.setdefault(category, f"{group}: {event['message'].strip()[:200]}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            absent.append(group)
    note = f"; no log group yet: {', '.join(absent)}" if absent else ""
    scope = f"; this audit {LOG_SCOPE}"
    if not counts:
        return StepResult(
            LOGS, Status.PASS, f"none since the verification started in {', '.join(log_groups)}{note}{scope}"
        )
    detail = "; ".join(f"{counts[c]} {c} (e.g. {samples[c]})" for c in LOG_TERMS if counts[c]) + note + scope
    fix = "; ".join(f"{c}: {LOG_FIXES[c]}" for c in LOG_TERMS if counts[c])
    status = Status.WARN if set(counts) == {"mount timeouts"} else Status.FAIL
    return StepResult(LOGS, status, detail, fix)
