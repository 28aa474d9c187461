"""Crash-safe atomic commit of one file under the mount root.

Guarantee: when :func:`commit` returns, ``root/key`` holds exactly ``data`` durably (fsynced on
the file system); a reader, on the mount or later in S3, sees either the previous file or the
complete new one, never a partial write. A crash at any step leaves the previous file intact and
at most one orphan ``.staging/<uuid4hex>.tmp`` that the janitor removes. On failure the staging
file is removed and :class:`StorageError` names the condition (ENOSPC, EROFS, EIO, ...). Nothing
is ever written outside the root: every directory is reached through :mod:`s3files_store.tree`,
which never follows a symlink (:class:`UnsafePathError` names the one in the way).

Protocol (S3 Files bills each metadata operation >= 4 KiB, so the hot path has exactly three:
create, fsync, rename; the Linux NFS client answers a directory fsync locally, since every NFS
directory operation is already synchronous on the server):

1. ``openat(.staging, <hex>.tmp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0o640)``.
2. ``write`` until every byte is written; ``fsync``; ``close``.
3. ``renameat(.staging, <hex>.tmp, final directory, name)``: atomic, same file system. On ENOENT
   with the staging file gone, the reply of a retransmitted NFS rename was lost: success if the
   final file holds our bytes; otherwise someone removed the staging file, and the error says so.
4. ``fsync`` the final directory, which makes the rename durable on local file systems too. The
   staging directory is not fsynced: if its entry's removal were lost, the crash would leave
   an orphan that the janitor removes, never a partial final file.

The root, ``.staging`` and final directory descriptors are kept between commits
(:func:`s3files_store.tree.kept_dir`), so a warm commit opens only its staging file: one open
below a path-based commit, which opens the final directory to fsync it. Directories are created
on first use, each made durable once. A kept directory removed meanwhile (ENOENT, ESTALE) makes
the commit walk afresh, once; any failure drops every kept descriptor.

Example:
    >>> result = commit(Path("/mnt/s3data"), "documents/2026/11/27/a.json", b"{}")
    >>> result.key, result.bytes
    ('documents/2026/11/27/a.json', 2)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from s3files_store import tree
from s3files_store.exceptions import StorageError, StoreError
from s3files_store.keys import STAGING_DIR

_STALE = {errno.ENOENT, errno.ESTALE}


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What was committed: absolute ``path``, root-relative ``key``, size and sha256 hex digest."""

    path: str
    key: str
    bytes: int
    sha256: str


def commit(root: Path, relative: Path | str, data: bytes) -> CommitResult:
    """Atomically replace ``root/relative`` with ``data`` (see the module docstring)."""
    parts = PurePosixPath(relative).parts
    if not parts or parts[0] == "/" or any(part == ".." or part.startswith(".") for part in parts):
        raise ValueError(f"commit() needs a key relative to the root, outside {STAGING_DIR}; got {relative}")
    key = "/".join(parts)
    digest = hashlib.sha256(data).hexdigest()
    try:
        try:
            _commit(root, parts, data, digest)
        except OSError as exc:
            if exc.errno not in _STALE:
                raise
            tree.forget_kept()  # a kept directory was removed since the last commit: walk afresh, once
            _commit(root, parts, data, digest)
    except OSError as exc:
        tree.forget_kept()
        raise StorageError.from_os_error(exc, f"commit of {key}") from exc
    except StoreError:
        tree.forget_kept()
        raise
    return CommitResult(path=str(root / key), key=key, bytes=len(data), sha256=digest)


def _commit(root: Path, parts: tuple[str, ...], data: bytes, digest: str) -> None:
    staging_fd = tree.kept_dir(root, (STAGING_DIR,))
    final_fd = tree.kept_dir(root, parts[:-1])
    name = f"{uuid.uuid4().hex}.tmp"
    try:
        _write_staging(staging_fd, name, data)
        _rename(staging_fd, name, final_fd, parts, len(data), digest)
        os.fsync(final_fd)
    except BaseException:
        # Not created, already renamed, or unremovable now: then the janitor removes it later.
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=staging_fd)
        raise


def _write_staging(staging_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, tree.CREATE_FLAGS, 0o640, dir_fd=staging_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        # NFS reports deferred write errors at close too: let them propagate.
        os.close(fd)


def _rename(
    staging_fd: int, name: str, final_fd: int, parts: tuple[str, ...], size: int, digest: str
) -> None:
    try:
        os.rename(name, parts[-1], src_dir_fd=staging_fd, dst_dir_fd=final_fd)
    except FileNotFoundError:
        try:
            os.stat(name, dir_fd=staging_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise  # the staging file is there, so the final directory is gone: walk afresh
        if _holds(final_fd, parts, size, digest):
            return
        raise StorageError(
            f"commit of {'/'.join(parts)} failed: its staging file {STAGING_DIR}/{name} was removed "
            f"before the rename, so nothing was committed. A janitor sweeping files younger than the "
            f"longest commit (STAGING_MAX_AGE_SECONDS), or another client cleaning {STAGING_DIR}, "
            f"removed it; the invocation fails so Lambda retries it [ENOENT]",
            errno=errno.ENOENT,
        ) from None


def _holds(final_fd: int, parts: tuple[str, ...], size: int, digest: str) -> bool:
    try:
        fd, actual = tree.open_file(final_fd, parts[-1], "/".join(parts), size)
    except (OSError, StoreError):
        return False
    with os.fdopen(fd, "rb") as file:
        return actual == size and hashlib.file_digest(file, "sha256").hexdigest() == digest
