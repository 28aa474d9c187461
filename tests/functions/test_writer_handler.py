from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.config import get_config
from s3files_store.exceptions import DeadlineError, MountError, StorageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext

MIB = 1024 * 1024


def emf_blobs(lines: list[str]) -> list[dict[str, Any]]:
    return [blob for blob in map(json.loads, lines) if "_aws" in blob]


def logs(lines: list[str]) -> list[dict[str, Any]]:
    return [blob for blob in map(json.loads, lines) if "level" in blob]


def test_commit_response_and_file(writer: ModuleType, root: Path, context: FakeContext) -> None:
    response = writer.handler({"id": "order-42", "total": 9.5}, context)
    path = root / response["key"]
    assert response == {
        "statusCode": 200,
        "committed_path": str(path),
        "key": response["key"],
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert response["key"].startswith("documents/") and response["key"].endswith("/order-42.json")
    assert json.loads(path.read_bytes()) == {"id": "order-42", "total": 9.5}


def test_request_id_is_the_default_document_id(writer: ModuleType, root: Path, context: FakeContext) -> None:
    response = writer.handler({"total": 1}, context)
    assert response["key"].endswith(f"/{context.aws_request_id}.json")


def test_logs_are_json_with_request_id_and_metrics_are_emf(
    writer: ModuleType, root: Path, context: FakeContext, stdout_lines: Callable[[], list[str]]
) -> None:
    writer.handler({"id": "a"}, context)
    lines = stdout_lines()
    (committed,) = [log for log in logs(lines) if log["message"] == "committed"]
    assert committed["function_request_id"] == context.aws_request_id
    assert committed["service"] == "s3files-test"
    (blob,) = emf_blobs(lines)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "S3FilesLambdaTest"
    assert {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]} == {
        "CommitLatency": "Milliseconds",
        "CommitBytes": "Bytes",
    }
    assert blob["CommitBytes"] == [float(len(b'{"id":"a"}'))]


@pytest.mark.parametrize(
    "event", [{"id": "../../etc/passwd"}, {"id": 12}, {"id": "a", "x": float("inf")}, [1, 2]]
)
def test_bad_input_is_400_and_writes_nothing(
    writer: ModuleType, root: Path, context: FakeContext, event: Any
) -> None:
    response = writer.handler(event, context)
    assert response["statusCode"] == 400
    assert isinstance(response["error"], str) and response["error"]
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("size", ["small", "large"])
def test_storage_fault_raises_and_counts_a_failure(
    writer: ModuleType,
    root: Path,
    context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
    stdout_lines: Callable[[], list[str]],
    size: str,
) -> None:
    def rename_fails(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "rename", rename_fails)
    threads = threading.active_count()
    with pytest.raises(StorageError, match="I/O error"):
        writer.handler({"id": "a", "v": "x" * (2 * MIB if size == "large" else 1)}, context)
    assert threading.active_count() == threads, "the digest's thread outlived the commit"
    lines = stdout_lines()
    (failure,) = [log for log in logs(lines) if log["message"] == "commit failed"]
    assert failure["error_kind"] == "StorageError"
    assert failure["errno"] == errno.EIO
    assert failure["function_request_id"] == context.aws_request_id
    (blob,) = emf_blobs(lines)
    assert blob["CommitFailures"] == [1.0]
    assert list((root / ".staging").iterdir()) == []


def test_a_large_document_is_hashed_and_measured_beside_its_write(
    writer: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 1 MiB on, the digest and the measure of the reader's response run on a second thread
    while the bytes go to disk: the digest is still the stored bytes', and a document the reader
    could not return is refused before the rename, leaving the previous version and no staging file."""
    first = writer.handler({"id": "big", "v": "é" * MIB}, context)
    path = root / first["key"]
    stored = path.read_bytes()
    assert first["statusCode"] == 200 and first["bytes"] == len(stored) > 2 * MIB
    assert first["sha256"] == hashlib.sha256(stored).hexdigest()
    renames: list[Any] = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda *a, **k: renames.append(a) or real_rename(*a, **k))
    threads = threading.active_count()
    # 4.2 MB stored, 6.3 MB once the runtime puts a space after each comma: over the limit.
    refused = writer.handler({"id": "big", "v": [0] * 2_100_000}, context)
    assert refused["statusCode"] == 413 and "response limit" in refused["error"]
    assert renames == [] and path.read_bytes() == stored
    assert list((root / ".staging").iterdir()) == []
    assert threading.active_count() == threads


def test_deadline_raises_so_lambda_retries(writer: ModuleType, root: Path, context: FakeContext) -> None:
    context.remaining_ms = 100
    with pytest.raises(DeadlineError, match="DEADLINE_MARGIN_MS"):
        writer.handler({"id": "a"}, context)
    assert list(root.iterdir()) == []


def test_missing_mount_raises(
    writer: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOUNT_ROOT", str(root / "not-mounted"))
    get_config.cache_clear()
    with pytest.raises(MountError, match="does not exist"):
        writer.handler({"id": "a"}, context)


def test_require_mount_refuses_a_plain_directory(
    writer: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUIRE_MOUNT", "true")
    get_config.cache_clear()
    with pytest.raises(MountError, match="not a mount point"):
        writer.handler({"id": "a"}, context)
    assert list(root.iterdir()) == []
