from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.config import Config
from s3files_store.documents import latest_key, read_document, write_document
from s3files_store.exceptions import (
    DeadlineError,
    InvalidRequestError,
    MountError,
    NotFoundError,
    StorageError,
    UnsafePathError,
)

if TYPE_CHECKING:
    from pathlib import Path

WHEN = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)


def clock() -> datetime:
    return WHEN


def write(event: Any, config: Config, remaining_ms: int = 30_000, request_id: str = "req-1") -> Any:
    return write_document(event, request_id, remaining_ms, config, clock=clock)


def test_write_commits_compact_json_under_dated_key(config: Config, tmp_path: Path) -> None:
    event = {"id": "order-42", "name": "café ☕", "items": [1, 2]}
    result = write(event, config)
    assert result.key == "documents/2026/11/27/order-42.json"
    stored = (tmp_path / result.key).read_bytes()
    assert stored == '{"id":"order-42","name":"café ☕","items":[1,2]}'.encode()
    assert result.bytes == len(stored)


def test_request_id_names_the_document_when_the_event_has_no_id(config: Config) -> None:
    result = write({"total": 1}, config, request_id="8c5a9b2e-1f3d-4d8a-9c1e-000000000001")
    assert result.key == "documents/2026/11/27/8c5a9b2e-1f3d-4d8a-9c1e-000000000001.json"


def test_configured_id_field_and_prefix(tmp_path: Path) -> None:
    config = Config(mount_root=tmp_path, id_field="orderId", document_prefix="tenant/docs")
    assert write({"orderId": "A-1", "id": "ignored"}, config).key == "tenant/docs/2026/11/27/A-1.json"


def test_same_id_twice_keeps_the_last_document(config: Config, tmp_path: Path) -> None:
    write({"id": "x", "v": 1}, config)
    result = write({"id": "x", "v": 2}, config)
    assert json.loads((tmp_path / result.key).read_bytes()) == {"id": "x", "v": 2}
    assert [path.name for path in (tmp_path / "documents/2026/11/27").iterdir()] == ["x.json"]


@pytest.mark.parametrize("remaining_ms", [0, 2999])
def test_deadline_guard_writes_nothing(config: Config, tmp_path: Path, remaining_ms: int) -> None:
    with pytest.raises(DeadlineError, match=f"only {remaining_ms} ms left.*DEADLINE_MARGIN_MS=3000"):
        write({"id": "late"}, config, remaining_ms=remaining_ms)
    assert list(tmp_path.iterdir()) == []


def test_deadline_margin_boundary_writes(config: Config) -> None:
    assert write({"id": "just-in-time"}, config, remaining_ms=3000).bytes > 0


@pytest.mark.parametrize(
    "event",
    [
        {"id": "../escape"},
        {"id": "a..b"},
        {"id": 7},
        {"id": None},
        {"id": ["a"]},
        {"id": {"nested": 1}},
        {"id": "x" * 129},
        {"id": ".staging"},
        ["not", "an", "object"],
        "text",
        {"id": "ok", "value": float("nan")},
        {"id": "ok", "value": {1, 2}},
    ],
)
def test_bad_requests_write_nothing(config: Config, tmp_path: Path, event: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        write(event, config)
    assert caught.value.status_code == 400
    assert list(tmp_path.iterdir()) == []


def test_invalid_request_id_is_refused(config: Config, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="request id"):
        write({"v": 1}, config, request_id="../../etc/passwd")
    assert list(tmp_path.iterdir()) == []


def test_missing_mount_is_a_mount_error(tmp_path: Path) -> None:
    with pytest.raises(MountError):
        write({"id": "a"}, Config(mount_root=tmp_path / "absent"))


def test_storage_failure_invalidates_the_mount_check(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write({"id": "a"}, config)
    monkeypatch.setattr(os, "rename", lambda *args, **kw: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    with pytest.raises(StorageError, match="read-only"):
        write({"id": "b"}, config)
    monkeypatch.undo()
    # The next invoke checks the mount again: a vanished root is now reported precisely.
    shutil.rmtree(tmp_path)
    with pytest.raises(MountError, match="does not exist"):
        write({"id": "c"}, config)


def test_read_back(config: Config) -> None:
    result = write({"id": "r1", "n": [1, {"a": None}]}, config)
    assert read_document(result.key, config) == {"id": "r1", "n": [1, {"a": None}]}


def test_read_missing_is_404(config: Config) -> None:
    with pytest.raises(NotFoundError) as caught:
        read_document("documents/2026/11/27/absent.json", config)
    assert caught.value.status_code == 404


def test_read_directory_is_404(config: Config) -> None:
    write({"id": "r1"}, config)
    with pytest.raises(NotFoundError):
        read_document("documents/2026", config)


def test_read_unparsable_is_storage_error(config: Config, tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents/broken.json").write_bytes(b'{"half":')
    with pytest.raises(StorageError, match="not valid JSON") as caught:
        read_document("documents/broken.json", config)
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    "key",
    [
        "../outside.json",
        "/etc/passwd",
        "a/../../outside.json",
        "a\x00b",
        ".staging/x.tmp",
        "%2e%2e/outside.json",
    ],
)
def test_read_hostile_keys_are_400_and_read_nothing_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.json").write_text('{"secret": true}')
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda path, *args, **kw: opened.append(str(path)) or real_open(path, *args, **kw)
    )
    with pytest.raises(InvalidRequestError):
        read_document(key, Config(mount_root=root))
    assert opened == []


def test_read_through_symlink_leaving_root_is_409(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.json").write_text('{"secret": true}')
    (root / "documents").mkdir()
    (root / "documents" / "leak.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(
        UnsafePathError, match=r"documents/leak.json on the mount is a symlink.*Remove it"
    ) as caught:
        read_document("documents/leak.json", Config(mount_root=root))
    assert caught.value.status_code == 409


def test_latest_key_finds_the_newest_day(config: Config) -> None:
    for day in (3, 27, 9):
        write_document(
            {"id": "order-42", "day": day}, "r", 30_000, config, clock=lambda d=day: WHEN.replace(day=d)
        )
    write_document({"id": "other"}, "r", 30_000, config, clock=lambda: WHEN.replace(day=28))
    key = latest_key("order-42", config)
    assert key == "documents/2026/11/27/order-42.json"
    assert read_document(key, config) == {"id": "order-42", "day": 27}


def test_latest_key_crosses_years_and_months(config: Config) -> None:
    write_document({"id": "a"}, "r", 30_000, config, clock=lambda: datetime(2025, 12, 31, tzinfo=UTC))
    write_document({"id": "b"}, "r", 30_000, config, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert latest_key("a", config) == "documents/2025/12/31/a.json"


def test_latest_key_not_found_is_404(config: Config) -> None:
    write_document({"id": "a"}, "r", 30_000, config, clock=clock)
    with pytest.raises(NotFoundError, match=r"no document with id 'nope' in the newest 366 days") as caught:
        latest_key("nope", config)
    assert caught.value.status_code == 404
    with pytest.raises(NotFoundError):
        latest_key("a", Config(mount_root=config.mount_root, document_prefix="elsewhere"))


def test_latest_key_searches_a_bounded_number_of_days(config: Config, tmp_path: Path) -> None:
    write_document({"id": "old"}, "r", 30_000, config, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    for month in range(1, 13):
        for day in range(1, 32):
            (tmp_path / f"documents/2026/{month:02}/{day:02}").mkdir(parents=True)
    with pytest.raises(NotFoundError):
        latest_key("old", config)


@pytest.mark.parametrize("bad", ["../x", "", 7, None])
def test_latest_key_refuses_bad_ids(config: Config, bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        latest_key(bad, config)


def test_latest_key_never_follows_a_symlinked_day(config: Config, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "a.json").write_text('{"secret": true}')
    (tmp_path / "documents/2026/11").mkdir(parents=True)
    (tmp_path / "documents/2026/11/30").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="documents/2026/11/30 on the mount is a symlink"):
        latest_key("a", config)
