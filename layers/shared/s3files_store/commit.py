"""Crash-safe atomic commit of one file under the mount root.

Guarantee: when :func:`commit` returns, ``root/relative`` holds exactly ``data`` durably (fsynced
on the file system); a reader, on the mount or later in S3, sees either the previous file or the
complete new one, never a partial write. A crash at any step leaves the previous file intact and
at most one orphan ``.staging/<uuid4hex>.tmp`` that the janitor removes. On failure the staging
file is removed and :class:`StorageError` names the condition (ENOSPC, EROFS, EIO, ...).

Protocol (S3 Files bills each metadata operation >= 4 KiB, so the hot path has exactly three:
create, fsync, rename; the Linux NFS client answers a directory fsync locally, since every NFS
directory operation is already synchronous on the server):

1. ``open(.staging/<hex>.tmp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0o640)``;
   ``mkdir .staging`` only when that fails with ENOENT (once per file system).
2. ``write`` until every byte is written; ``fsync``; ``close``.
3. ``rename(staging, final)``: atomic because staging is on the same file system. On ENOENT with
   the staging file still present the parent directories are missing (first commit of the day):
   create them, fsync their parents, rename again. On ENOENT with the staging file gone, the
   reply of a retransmitted NFS rename was lost: success if the final file holds our bytes.
4. ``fsync`` the final directory, which makes the rename durable on local file systems too. The
   staging directory is not fsynced: if its entry's removal were lost, the crash would leave
   an orphan that the janitor removes, never a partial final file.

Example:
    >>> result = commit(Path("/mnt/s3data"), "documents/2026/11/27/a.json", b"{}")
    >>> result.key, result.bytes
    ('documents/2026/11/27/a.json', 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from s3files_store.exceptions import StorageError
from s3files_store.keys import STAGING_DIR

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What was committed: absolute ``path``, root-relative ``key``, size and sha256 hex digest."""

    path: str
    key: str
    bytes: int
    sha256: str


def commit(root: Path, relative: Path | str, data: bytes) -> CommitResult:
    """Atomically replace ``root/relative`` with ``data`` (see the module docstring)."""
    key = PurePosixPath(relative)
    if key.is_absolute() or ".." in key.parts or not key.parts or key.parts[0] == STAGING_DIR:
        raise ValueError(f"commit() needs a key relative to the root, outside {STAGING_DIR}; got {key}")
    final = root / key
    staging = root / STAGING_DIR / f"{uuid.uuid4().hex}.tmp"
    digest = hashlib.sha256(data).hexdigest()
    try:
        _write_staging(staging, data)
        _rename(root, staging, final, len(data), digest)
        _fsync_dir(final.parent)
    except OSError as exc:
        _discard(staging)
        raise StorageError.from_os_error(exc, f"commit of {key}") from exc
    return CommitResult(path=str(final), key=str(key), bytes=len(data), sha256=digest)


def _write_staging(staging: Path, data: bytes) -> None:
    try:
        fd = os.open(staging, _CREATE_FLAGS, 0o640)
    except FileNotFoundError:
        _mkdir(staging.parent)
        fd = os.open(staging, _CREATE_FLAGS, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        # NFS reports deferred write errors at close too: let them propagate.
        os.close(fd)


def _rename(root: Path, staging: Path, final: Path, size: int, digest: str, *, retry: bool = True) -> None:
    try:
        staging.rename(final)
    except FileNotFoundError:
        if not os.path.lexists(staging):
            if _holds(final, size, digest):
                return
            raise
        if not retry:
            raise
        _make_parents(root, final.parent)
        _rename(root, staging, final, size, digest, retry=False)


def _make_parents(root: Path, directory: Path) -> None:
    """Create ``directory`` and missing ancestors below ``root`` (never ``root`` itself)."""
    if directory == root:
        raise FileNotFoundError(2, "mount root does not exist", str(root))
    try:
        _mkdir(directory)
    except FileNotFoundError:
        _make_parents(root, directory.parent)
        _mkdir(directory)


def _mkdir(directory: Path) -> None:
    try:
        directory.mkdir(0o750)
    except FileExistsError:
        return  # a concurrent commit created it
    # Make the new entry durable; paid once per new directory, not per commit.
    _fsync_dir(directory.parent)


def _holds(final: Path, size: int, digest: str) -> bool:
    try:
        with final.open("rb") as file:
            if os.fstat(file.fileno()).st_size != size:
                return False
            return hashlib.file_digest(file, "sha256").hexdigest() == digest
    except OSError:
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(staging: Path) -> None:
    # Not created, already renamed, or unremovable now: then the janitor removes it later.
    with contextlib.suppress(OSError):
        staging.unlink()
