"""Crash-safe atomic commit of one file under the mount root, whatever its size.

Guarantee: once :func:`commit` (or :meth:`Staging.publish`, how :mod:`s3files_store.stream` commits
streams) returns, ``root/key`` holds exactly the bytes written, fsynced; a reader, on the mount or
later in S3, sees the previous file or the complete new one, never a partial write. A crash at any
step leaves the previous file and at most one orphan ``.staging/<uuid4hex>.tmp`` for the janitor.
A failure removes the staging file and raises :class:`StorageError` naming the condition (ENOSPC,
EROFS, EIO...). Directories are reached through :mod:`s3files_store.tree`, never via a symlink.

Protocol (S3 Files bills each metadata operation >= 4 KiB: the hot path has exactly three):

1. ``openat(.staging, <hex>.tmp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0o640)``.
2. ``write`` every byte (a stream: chunk by chunk); ``fsync``; ``close``.
3. ``renameat(.staging, <hex>.tmp, final directory, name)``: atomic. ENOENT with the staging file
   gone means the reply of a retransmitted NFS rename was lost: success if the final file holds our
   bytes, else someone removed the staging file and the error says so.
4. ``fsync`` the final directory (no NFS call; a durable rename on local file systems). A lost
   removal of the ``.staging`` entry (not fsynced) leaves an orphan, never a partial file.

Directory descriptors are kept between commits (:func:`tree.borrow_dir`): a warm commit opens only
its staging file. A kept directory removed meanwhile (ENOENT, ESTALE) makes the create or the rename
walk afresh, once; any failure forgets them all. ``commit(root, "a/b.json", b"{}").bytes == 2``
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from s3files_store import tree
from s3files_store.exceptions import StorageError, StoreError
from s3files_store.keys import STAGING_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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
    digest = hashlib.sha256(data).hexdigest
    staging = Staging(root, relative)
    staging.write(data)
    return staging.publish(len(data), digest)


class Staging:
    """A new staging file: :meth:`write` to it (or to :attr:`fd` in a :meth:`step`), :meth:`publish` it."""

    def __init__(self, root: Path, relative: Path | str) -> None:
        parts = PurePosixPath(relative).parts
        if not parts or parts[0] == "/" or any(part == ".." or part.startswith(".") for part in parts):
            raise ValueError(f"commit() needs a key relative to the root, not in {STAGING_DIR}: {relative}")
        self.root, self.parts, self.key = root, parts, "/".join(parts)
        self.name = name = f"{uuid.uuid4().hex}.tmp"
        self.fd = self._staging_fd = self._final_fd = -1
        with self.step():
            self.fd = self._in_dirs(lambda: os.open(name, tree.CREATE_FLAGS, 0o640, dir_fd=self._staging_fd))

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """On any failure :meth:`discard`; an OSError becomes a StorageError naming its condition."""
        try:
            yield
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise StorageError.from_os_error(exc, f"commit of {self.key}") from exc
            raise

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append every byte of ``data`` to the staging file."""
        with self.step():
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]

    def publish(self, size: int, digest: Callable[[], str]) -> CommitResult:
        """Make the bytes written the file at the key, durably; ``digest()`` is awaited after the fsync."""
        with self.step():
            fd, self.fd = self.fd, -1
            try:
                os.fsync(fd)
            finally:
                os.close(fd)  # NFS reports deferred write errors at close too: let them propagate.
            sha256 = digest()
            self._in_dirs(lambda: self._rename(size, sha256))
            os.fsync(self._final_fd)
            tree.return_dir(self.root, (STAGING_DIR,), self._staging_fd)
            tree.return_dir(self.root, self.parts[:-1], self._final_fd)
            self._staging_fd = self._final_fd = -1
        return CommitResult(path=str(self.root / self.key), key=self.key, bytes=size, sha256=sha256)

    def discard(self, remove: bool = True) -> None:
        """Remove the staging file (else the janitor will) and forget every kept directory."""
        if remove and self._staging_fd >= 0:  # fails harmlessly when never created or already renamed
            with contextlib.suppress(OSError):
                os.unlink(self.name, dir_fd=self._staging_fd)
        tree.close_quietly(self.fd, self._staging_fd, self._final_fd)
        self.fd = self._staging_fd = self._final_fd = -1
        tree.forget_kept()

    def _in_dirs[T](self, action: Callable[[], T], again: bool = True) -> T:
        try:
            if self._final_fd < 0:  # then the staging directory is not borrowed either
                self._staging_fd = tree.borrow_dir(self.root, (STAGING_DIR,))
                self._final_fd = tree.borrow_dir(self.root, self.parts[:-1])
            return action()
        except OSError as exc:
            if not again or exc.errno not in _STALE:
                raise
        self.discard(remove=False)  # a kept directory was removed meanwhile: walk afresh, once
        return self._in_dirs(action, again=False)

    def _rename(self, size: int, digest: str) -> None:
        try:
            os.rename(self.name, self.parts[-1], src_dir_fd=self._staging_fd, dst_dir_fd=self._final_fd)
        except FileNotFoundError:
            if os.access(self.name, os.F_OK, dir_fd=self._staging_fd, follow_symlinks=False):
                raise  # the staging file is there, so the final directory is gone: walk afresh
            with contextlib.suppress(OSError, StoreError):  # does the final file hold our bytes?
                fd, actual = tree.open_file(self._final_fd, self.parts[-1], self.key, size)
                with os.fdopen(fd, "rb") as file:
                    if actual == size and hashlib.file_digest(file, "sha256").hexdigest() == digest:
                        return
            raise StorageError(
                f"commit of {self.key} failed: its staging file {STAGING_DIR}/{self.name} was removed before "
                f"the rename (by a janitor whose STAGING_MAX_AGE_SECONDS is below the longest commit, or "
                f"another client cleaning {STAGING_DIR}): nothing was committed, Lambda retries [ENOENT]",
                errno=errno.ENOENT,
            ) from None
