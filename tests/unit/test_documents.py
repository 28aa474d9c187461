from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.config import Config
from s3files_store.documents import list_documents, read_document, write_document
from s3files_store.exceptions import (
    DeadlineError,
    InvalidRequestError,
    MountError,
    NotFoundError,
    StorageError,
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
    monkeypatch.setattr(os, "rename", lambda src, dst: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
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


def test_read_through_symlink_leaving_root_is_400(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.json").write_text('{"secret": true}')
    (root / "documents").mkdir()
    (root / "documents" / "leak.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(InvalidRequestError):
        read_document("documents/leak.json", Config(mount_root=root))


@pytest.fixture
def populated(config: Config, tmp_path: Path) -> list[str]:
    keys = []
    for day in ("01", "02", "10"):
        for name in ("b", "a", "a.x", "c-1"):
            path = tmp_path / "documents/2026/11" / day / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            keys.append(f"documents/2026/11/{day}/{name}.json")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "abc.tmp").write_text("partial")
    (tmp_path / "documents/2026/11/01/left.tmp").write_text("partial")
    (tmp_path / "documents/.hidden.json").write_text("{}")
    (tmp_path / "documents/2026/11/01/zz-link.json").symlink_to(tmp_path / "documents/2026/11/01/a.json")
    return sorted(keys, key=lambda key: key.split("/"))


def test_list_everything_in_order(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=1000)
    assert keys == populated
    assert cursor is None


def test_list_pages_with_cursor(config: Config, populated: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        keys, cursor = list_documents("documents", config, limit=5, cursor=cursor)
        seen.extend(keys)
        pages += 1
        if cursor is None:
            break
        assert cursor == keys[-1]
    assert seen == populated
    assert pages == 3


def test_list_exact_page_has_no_next_cursor(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=len(populated))
    assert len(keys) == len(populated)
    assert cursor is None


def test_list_subdirectory_prefix(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("documents/2026/11/02", config)
    assert keys == [key for key in populated if "/02/" in key]


def test_list_root_never_shows_staging(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("", config, limit=1000)
    assert keys == populated
    assert not any(".staging" in key or key.endswith(".tmp") for key in keys)


def test_list_cursor_survives_deleted_key(config: Config, populated: list[str], tmp_path: Path) -> None:
    first, cursor = list_documents("documents", config, limit=2)
    assert cursor is not None
    (tmp_path / cursor).unlink()
    rest, _ = list_documents("documents", config, limit=1000, cursor=cursor)
    assert first == populated[:2]
    assert rest == populated[2:]


def test_list_missing_prefix_is_empty(config: Config) -> None:
    assert list_documents("documents/1999", config) == ([], None)


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", 1.5, True, None])
def test_list_limit_bounds(config: Config, limit: object) -> None:
    with pytest.raises(InvalidRequestError, match="limit"):
        list_documents("documents", config, limit=limit)


@pytest.mark.parametrize("bad", ["../x", "/etc", ".staging", "a\x00"])
def test_list_hostile_prefix_and_cursor(config: Config, bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="prefix"):
        list_documents(bad, config)
    with pytest.raises(InvalidRequestError, match="cursor"):
        list_documents("documents", config, cursor=bad)


def test_list_symlinked_prefix_leaving_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    root = tmp_path / "root"
    root.mkdir()
    (root / "documents").symlink_to(outside)
    with pytest.raises(InvalidRequestError):
        list_documents("documents", Config(mount_root=root))
