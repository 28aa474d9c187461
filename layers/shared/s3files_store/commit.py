"""Crash-safe atomic commit of one file under the mount root, whatever its size.

Guarantee: once :func:`commit` (or :meth:`Staging.publish`, for streams) returns, ``root/key``, as
the path stood at the rename, holds exactly the bytes written, fsynced: a reader (on the mount, or
in S3 later) sees the previous file or the complete new one, never a partial write. A crash leaves
the previous file and at most one orphan ``.staging/<uuid4hex>.tmp`` for the janitor; a failure
removes the staging file and raises :class:`StorageError` naming the condition (ENOSPC, EIO...).

Protocol (S3 Files bills each metadata operation >= 4 KiB: the hot path has exactly three):

1. ``openat(.staging, <hex>.tmp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0o640)``;
2. ``write`` every byte (a stream: chunk by chunk), ``fsync``, ``close``;
3. ``renameat(.staging, <hex>.tmp, final directory, name)``, atomic. ENOENT with the staging file
   gone: the reply of a retransmitted NFS rename was lost if the final file holds our bytes, else
   someone removed the staging file and the error says so;
4. ``fsync`` the final directory (no NFS call; a durable rename on local file systems).

Directories are reached through :mod:`s3files_store.tree` (never a symlink) and kept open between
commits, while other clients may move or remove them. So ``.staging`` must be at its name right
before step 1, and the final directory at the key right before step 3 (one ``stat`` each,
:func:`tree.still_at`: 8 system calls on the mount per warm commit, as a commit by paths makes);
one that moved, or was removed (ENOENT, ESTALE), is forgotten with every kept descriptor and the
walk redone, once. Only a move in the instant between a check and its operation goes unseen.
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
from s3files_store.exceptions import StorageError, UnsafePathError
from s3files_store.keys import STAGING_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What was committed: absolute ``path``, root-relative ``key``, size and sha256 hex digest."""

    path: str
    key: str
    bytes: int
    sha256: str


def commit(root: Path, relative: Path | str, data: bytes) -> CommitResult:
    """Atomically replace ``root/relative`` with ``data`` (see the module docstring)."""
    staging = Staging(root, relative)
    staging.write(data)
    return staging.publish(len(data), hashlib.sha256(data).hexdigest)


class Staging:
    """A new staging file: :meth:`write` to it (or to :attr:`fd` in a :meth:`step`), :meth:`publish` it."""

    def __init__(self, root: Path, relative: Path | str) -> None:
        parts = PurePosixPath(relative).parts
        if not parts or parts[0] == "/" or any(part == ".." or part.startswith(".") for part in parts):
            raise ValueError(f"commit() needs a key relative to the root, not in {STAGING_DIR}: {relative}")
        self.root, self.parts, self.key = root, parts, "/".join(parts)
        self.name, self.fd, self._staging_fd, self._final_fd = f"{uuid.uuid4().hex}.tmp", -1, -1, -1
        with self.step():
            self.fd = self._in_dirs(self._create)

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
            os.fsync(self.fd)
            fd, self.fd = self.fd, -1
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
            if not again or exc.errno not in (errno.ENOENT, errno.ESTALE):
                raise
        self.discard(remove=False)  # a kept directory was removed or moved meanwhile: walk afresh, once
        return self._in_dirs(action, again=False)

    def _create(self) -> int:
        if not tree.still_at(self.root, (STAGING_DIR,), self._staging_fd):  # moved: never stage there
            raise OSError(errno.ESTALE, f"{STAGING_DIR} was moved by another client")
        return os.open(self.name, tree.CREATE_FLAGS, 0o640, dir_fd=self._staging_fd)

    def _rename(self, size: int, digest: str) -> None:
        if not tree.still_at(self.root, self.parts[:-1], self._final_fd):  # moved: never commit there
            raise OSError(errno.ESTALE, f"{'/'.join(self.parts[:-1])} was moved by another client")
        try:
            os.rename(self.name, self.parts[-1], src_dir_fd=self._staging_fd, dst_dir_fd=self._final_fd)
        except IsADirectoryError:
            raise UnsafePathError(f"{self.key} on the mount is a directory: remove it and retry") from None
        except FileNotFoundError:
            if os.access(self.name, os.F_OK, dir_fd=self._staging_fd, follow_symlinks=False):
                raise  # the staging file is there, so the final directory is gone: walk afresh
            if tree.holds(self._final_fd, self.parts[-1], self.key, size, digest):
                return  # the reply of a retransmitted rename was lost: it happened
            raise StorageError(
                f"commit of {self.key} failed: its staging file {STAGING_DIR}/{self.name} was removed before "
                f"the rename (by a janitor whose STAGING_MAX_AGE_SECONDS is below the longest commit, or "
                f"another client cleaning {STAGING_DIR}): nothing was committed, Lambda retries [ENOENT]",
                errno=errno.ENOENT,
            ) from None
