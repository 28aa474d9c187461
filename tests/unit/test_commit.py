from __future__ import annotations

import errno
import hashlib
import os
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.commit import commit
from s3files_store.exceptions import StorageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

KEY = "documents/2026/11/27/doc.json"
OLD = b'{"v":1}'
NEW = b'{"v":2,"padding":"' + b"x" * 5000 + b'"}'

real_rename = os.rename
real_write = os.write
real_fsync = os.fsync
real_close = os.close


def test_commit_writes_file_and_reports_it(staged: Callable[[Path], list[Path]], tmp_path: Path) -> None:
    result = commit(tmp_path, KEY, NEW)
    final = tmp_path / KEY
    assert final.read_bytes() == NEW
    assert result.path == str(final)
    assert result.key == KEY
    assert result.bytes == len(NEW)
    assert result.sha256 == hashlib.sha256(NEW).hexdigest()
    assert final.stat().st_mode & 0o777 == 0o640
    assert staged(tmp_path) == []


def test_same_key_twice_replaces_atomically(staged: Callable[[Path], list[Path]], tmp_path: Path) -> None:
    commit(tmp_path, KEY, OLD)
    inode_before = (tmp_path / KEY).stat().st_ino
    commit(tmp_path, KEY, NEW)
    assert (tmp_path / KEY).read_bytes() == NEW
    # A rename installs a new inode: readers holding the old file keep a complete old version.
    assert (tmp_path / KEY).stat().st_ino != inode_before
    assert staged(tmp_path) == []


def test_empty_payload(tmp_path: Path) -> None:
    result = commit(tmp_path, KEY, b"")
    assert (tmp_path / KEY).read_bytes() == b""
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("relative", ["/etc/passwd", "../outside.json", "a/../../x", ".staging/x.json", ""])
def test_rejects_keys_outside_the_tree(tmp_path: Path, relative: str) -> None:
    with pytest.raises(ValueError, match="relative to the root"):
        commit(tmp_path, relative, OLD)
    assert list(tmp_path.iterdir()) == []


def test_missing_root_is_not_created(tmp_path: Path) -> None:
    root = tmp_path / "not-mounted"
    with pytest.raises(StorageError, match="MOUNT_ROOT") as caught:
        commit(root, KEY, OLD)
    assert caught.value.errno == errno.ENOENT
    assert not root.exists()


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def one_byte(fd: int, data: Any) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:1]))

    monkeypatch.setattr(os, "write", one_byte)
    commit(tmp_path, KEY, NEW)
    assert (tmp_path / KEY).read_bytes() == NEW
    assert len(calls) == len(NEW)


def test_warm_commit_checks_its_kept_directories_and_makes_no_mkdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(tmp_path, KEY, OLD)  # creates .staging and the day directory
    calls: list[str] = []

    def recording(name: str) -> Callable[..., Any]:
        real = getattr(os, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    for name in ("stat", "lstat", "mkdir", "rename", "fsync", "unlink"):
        monkeypatch.setattr(os, name, recording(name))
    commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    # .staging still at its name, the file fsync, the final directory still at the key, the rename,
    # the directory fsync; nothing else (no walk, no mkdir).
    assert calls == ["stat", "fsync", "stat", "rename", "fsync"]
    assert (tmp_path / KEY).read_bytes() == NEW


def _fail(code: int) -> Callable[..., Any]:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return failing


def _fail_close(code: int) -> Callable[[int], None]:
    # NFS reports deferred write errors at close: the descriptor is released, then the error raised.
    def failing(fd: int) -> None:
        real_close(fd)
        raise OSError(code, os.strerror(code))

    return failing


FAULTS = [
    ("write", errno.ENOSPC, "no space left on the file system"),
    ("write", errno.EDQUOT, "quota exceeded"),
    ("write", errno.EIO, "I/O error"),
    ("fsync", errno.EIO, "I/O error"),
    ("fsync", errno.EDQUOT, "quota exceeded"),
    ("fsync", errno.ENOSPC, "no space left"),
    ("close", errno.EIO, "I/O error"),
    ("rename", errno.EROFS, "read-only file system.*s3files:ClientWrite"),
    ("rename", errno.ESTALE, "stale file handle"),
    ("rename", errno.EACCES, "permission denied.*PosixUser.*CreationPermissions"),
    ("rename", errno.EPERM, "permission denied"),
    ("rename", errno.EIO, "I/O error"),
]


@pytest.mark.parametrize(("syscall", "code", "message"), FAULTS)
def test_fault_leaves_previous_version_and_no_staging(
    staged: Callable[[Path], list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    syscall: str,
    code: int,
    message: str,
) -> None:
    commit(tmp_path, KEY, OLD)
    fake = _fail_close(code) if syscall == "close" else _fail(code)
    monkeypatch.setattr(os, syscall, fake)
    with pytest.raises(StorageError, match=message) as caught:
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert caught.value.errno == code
    assert errno.errorcode[code] in str(caught.value)
    assert KEY in str(caught.value)
    assert (tmp_path / KEY).read_bytes() == OLD
    assert staged(tmp_path) == []


@pytest.mark.parametrize(("code", "message"), [(errno.EROFS, "read-only"), (errno.EACCES, "permission")])
def test_fault_creating_staging_file(
    staged: Callable[[Path], list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    message: str,
) -> None:
    monkeypatch.setattr(os, "open", _fail(code))
    with pytest.raises(StorageError, match=message):
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert not (tmp_path / KEY).exists()
    assert staged(tmp_path) == []


def test_fault_without_previous_version_leaves_no_file(
    staged: Callable[[Path], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _fail(errno.EIO))
    with pytest.raises(StorageError):
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert not (tmp_path / KEY).exists()
    assert staged(tmp_path) == []


def test_directory_fsync_failure_after_rename_is_reported(
    staged: Callable[[Path], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(tmp_path, KEY, OLD)
    calls = []

    def file_ok_then_fail(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.EIO, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", file_ok_then_fail)
    with pytest.raises(StorageError, match="I/O error"):
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    # The rename happened but durability is unconfirmed: the caller must retry (same bytes).
    assert (tmp_path / KEY).read_bytes() == NEW
    assert staged(tmp_path) == []


def test_lost_rename_reply_is_success_when_final_holds_our_bytes(
    staged: Callable[[Path], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(tmp_path, KEY, OLD)

    def renamed_then_enoent(*args: Any, **kwargs: Any) -> None:
        real_rename(*args, **kwargs)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(os, "rename", renamed_then_enoent)
    result = commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert result.sha256 == hashlib.sha256(NEW).hexdigest()
    assert (tmp_path / KEY).read_bytes() == NEW
    assert staged(tmp_path) == []


@pytest.mark.parametrize("other", [b'{"v":3}', NEW[:-1] + b"!"], ids=["other-size", "same-size"])
def test_lost_rename_reply_with_other_bytes_is_an_error(
    staged: Callable[[Path], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other: bytes
) -> None:
    commit(tmp_path, KEY, OLD)

    def renamed_overwritten_then_enoent(*args: Any, **kwargs: Any) -> None:
        real_rename(*args, **kwargs)
        (tmp_path / KEY).write_bytes(other)  # a concurrent writer won in between
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(os, "rename", renamed_overwritten_then_enoent)
    with pytest.raises(StorageError) as caught:
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOENT
    assert staged(tmp_path) == []


def test_enoent_with_staging_present_walks_afresh_once(
    staged: Callable[[Path], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def always_enoent(*args: Any, **kwargs: Any) -> None:
        calls.append(args[1])
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(os, "rename", always_enoent)
    with pytest.raises(StorageError) as caught:
        commit(tmp_path, KEY, NEW)
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOENT
    assert len(calls) == 2
    assert (tmp_path / KEY).parent.is_dir()
    assert not (tmp_path / KEY).exists()
    assert staged(tmp_path) == []


def test_real_full_file_system(staged: Callable[[Path], list[Path]], tmpfs: Callable[..., Path]) -> None:
    root = tmpfs("64k")
    commit(root, KEY, OLD)
    with pytest.raises(StorageError, match="no space left") as caught:
        commit(root, KEY, b"x" * (1024 * 1024))
    assert caught.value.errno == errno.ENOSPC
    assert (root / KEY).read_bytes() == OLD
    assert staged(root) == []


def test_real_read_only_file_system(
    remount_read_only: Callable[[Path], None],
    staged: Callable[[Path], list[Path]],
    tmpfs: Callable[..., Path],
) -> None:
    root = tmpfs()
    commit(root, KEY, OLD)
    remount_read_only(root)
    with pytest.raises(StorageError, match="read-only file system") as caught:
        commit(root, KEY, NEW)
    assert caught.value.errno == errno.EROFS
    assert (root / KEY).read_bytes() == OLD
    assert staged(root) == []
