"""The one way to reach anything beneath the mount root: descriptor by descriptor, never by path.

The mount is shared ground (other functions, other access points, people writing through S3,
bugs), so no path under MOUNT_ROOT is trusted. A walk starts from a descriptor of the root and
opens one component at a time relative to its parent, with ``O_DIRECTORY|O_NOFOLLOW``; files are
opened, created, renamed and unlinked relative to their directory's descriptor. A symlink or a
non-directory anywhere on the way fails that step, and a directory swapped for a symlink between
two steps is never followed, and a file with a second hard link (which may be outside) is never
read: nothing outside the root is ever read, written or listed.
:class:`UnsafePathError` names the entry and says to remove it. Keys never reach hidden names
(:func:`s3files_store.keys.validate_key`), and listings skip them.

A descriptor keeps naming the directory it was opened on, wherever another client moves that
directory later (out of the root, into a hidden directory). So a kept descriptor
(:func:`borrow_dir`, between commits) is never trusted to still be at its key: :func:`still_at`
compares the directory at the key, as the path stands now, with the one the descriptor was opened
on, in one ``stat`` from the root; a caller that finds it moved forgets what it kept and walks
afresh.

Example:
    >>> root_fd = open_root(Path("/mnt/s3data"))
    >>> day_fd = open_dir(root_fd, ("documents", "2026", "12", "01"))
    >>> fd, size = open_file(day_fd, "order-42.json", "documents/2026/12/01/order-42.json", 2**20)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from typing import TYPE_CHECKING

from s3files_store.exceptions import StoreError, TooLargeError, UnsafePathError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A new file under the root: never an existing one, never through a symlink.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted under a document name must not wait for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# ELOOP: a symlink met with O_NOFOLLOW. ENOTDIR: not a directory. ENXIO: a socket or a device
# without a driver. None of them is ever followed or opened.
_UNSAFE = {errno.ELOOP, errno.ENOTDIR, errno.ENXIO}
_MAX_KEPT = 64


class _Kept(dict[tuple[str, ...], int]):
    """One thread's kept descriptors, closed when the thread ends (its locals are released), and
    the identity (st_dev, st_ino) of each directory it opened, by descriptor, for :func:`still_at`."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[int, tuple[int, int]] = {}

    def close_all(self) -> None:
        close_quietly(*self.values())
        self.clear()
        self.ids.clear()

    def __del__(self) -> None:
        self.close_all()


# Per thread: a descriptor closed by one thread must never be in use by another.
_local = threading.local()


def borrow_dir(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of ``root/parts``: this thread's kept one when there is one, else a new one.

    Missing directories are created as by ``open_dir(..., create=True)``. The descriptor is the
    caller's until it hands it back with :func:`return_dir`, so nothing else in this thread (a
    nested commit, :func:`forget_kept`) closes it meanwhile. After a failure the caller closes it
    instead and calls :func:`forget_kept`: a kept directory may have been removed.
    """
    kept = _kept()
    if len(kept) > _MAX_KEPT:
        kept.close_all()
    _kept_dir(kept, root, parts)
    return kept.pop((str(root), *parts))


def return_dir(root: Path, parts: tuple[str, ...], fd: int) -> None:
    """Keep a borrowed descriptor for this thread's next :func:`borrow_dir` of ``root/parts``."""
    kept = _kept()
    key = (str(root), *parts)
    if key in kept:  # a nested commit opened its own meanwhile
        os.close(fd)
    else:
        kept[key] = fd


def _kept() -> _Kept:
    kept: _Kept | None = getattr(_local, "kept", None)
    if kept is None:  # once per thread (setdefault would build, and finalize, a spare one each call)
        kept = _local.kept = _Kept()
    return kept


def _kept_dir(kept: _Kept, root: Path, parts: tuple[str, ...]) -> int:
    key = (str(root), *parts)
    if key not in kept:
        if parts:
            fd = open_dir(_kept_dir(kept, root, parts[:-1]), parts[-1:], create=True, under=parts[:-1])
        else:
            fd = open_root(root)
        kept[key] = fd
        kept.ids[fd] = _identity(os.fstat(fd))
    return kept[key]


def still_at(root: Path, parts: tuple[str, ...], fd: int) -> bool:
    """Whether ``root/parts``, as the path stands now, is the directory ``fd`` was borrowed for.

    One ``stat`` of ``parts`` from the root's descriptor (its last component not followed): False
    when another client moved that directory away, replaced it, or put something else at its name.
    A symlink planted above the last component and leading back to the same directory is followed
    here; readers and fresh walks refuse it, naming it. Other errors (EIO, ESTALE) propagate.
    """
    if not parts:
        return True  # the root itself: the mount point, configuration
    kept = _kept()
    ident = kept.ids.get(fd) or _identity(os.fstat(fd))
    try:
        info = os.stat("/".join(parts), dir_fd=_kept_dir(kept, root, ()), follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return _identity(info) == ident


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def forget_kept() -> None:
    """Close this thread's kept descriptors (never borrowed ones); the next borrow walks afresh."""
    _kept().close_all()


def close_quietly(*fds: int) -> None:
    """Close each descriptor that is not -1, ignoring errors (cleaning up after a failure)."""
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def opened(fd: int) -> Iterator[int]:
    """Close ``fd`` when the block ends: ``with opened(open_dir(...)) as fd: ...``."""
    try:
        yield fd
    finally:
        os.close(fd)


def open_root(root: Path) -> int:
    """A descriptor of MOUNT_ROOT itself (configuration, so it may be a symlink, like /mnt links)."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_dir(dir_fd: int, parts: Sequence[str], *, create: bool = False, under: Sequence[str] = ()) -> int:
    """A new descriptor of the directory ``parts`` below ``dir_fd`` (the caller closes it).

    With ``create``, missing directories are made (mode 0750) and each new entry is made durable
    with an fsync of its parent, once per new directory. Raises :class:`UnsafePathError` when a
    component is a symlink or not a directory (naming it as ``under/parts...``: where ``dir_fd``
    stands below the root), ``FileNotFoundError`` when one is missing.
    """
    current = os.dup(dir_fd)
    try:
        for depth, name in enumerate(parts):
            child = _open_child(current, name, create, (*under, *parts[: depth + 1]))
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def _open_child(dir_fd: int, name: str, create: bool, shown: Sequence[str]) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        raise unsafe(exc, dir_fd, name, shown, "a directory") from None
    with contextlib.suppress(FileExistsError):  # a concurrent commit created it
        os.mkdir(name, 0o750, dir_fd=dir_fd)
        os.fsync(dir_fd)
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise unsafe(exc, dir_fd, name, shown, "a directory") from None


def open_file(dir_fd: int, name: str, shown: str, max_bytes: int) -> tuple[int, int]:
    """A read descriptor and the size of regular file ``name`` in ``dir_fd`` (the caller closes it).

    Raises :class:`UnsafePathError` for anything but a regular file (``IsADirectoryError`` for a
    directory) and for a file with more than one hard link (its other name may be outside the
    root), :class:`TooLargeError` above ``max_bytes``, ``FileNotFoundError`` when absent.
    """
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise unsafe(exc, dir_fd, name, (shown,), "a regular file") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", shown)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(
                f"{shown} on the mount is {kind(info.st_mode)}, not a regular file: it is never read; "
                f"remove it from the file system (or its object from the bucket)"
            )
        if info.st_nlink > 1:
            raise UnsafePathError(
                f"{shown} on the mount has {info.st_nlink} hard links: another name, perhaps outside "
                f"MOUNT_ROOT, shares its content, so it is never read; replace it with a copy (a file "
                f"of its own), or remove it"
            )
        if info.st_size > max_bytes:
            raise TooLargeError(
                f"{shown} is {info.st_size:,} bytes, more than the {max_bytes:,} this function loads "
                f"in memory; read it from the bucket instead"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def open_key(root: Path, parts: Sequence[str], max_bytes: int) -> tuple[int, int]:
    """:func:`open_file` for the key ``parts`` below ``root``: a read descriptor and the size."""
    with opened(open_root(root)) as root_fd:
        dir_fd = open_dir(root_fd, parts[:-1])
    with opened(dir_fd):
        return open_file(dir_fd, parts[-1], "/".join(parts), max_bytes)


def holds(dir_fd: int, name: str, shown: str, size: int, sha256: str) -> bool:
    """Whether ``name`` in ``dir_fd`` is a regular file of exactly ``size`` bytes and this ``sha256``."""
    with contextlib.suppress(OSError, StoreError):
        fd, actual = open_file(dir_fd, name, shown, size)
        with os.fdopen(fd, "rb") as file:
            return actual == size and hashlib.file_digest(file, "sha256").hexdigest() == sha256
    return False


def unsafe(
    exc: OSError, dir_fd: int, name: str, shown: Sequence[str], expected: str
) -> OSError | UnsafePathError:
    """``exc``, from opening ``name`` in ``dir_fd``, as an :class:`UnsafePathError` naming what
    stands there when it means "not what we expected here"."""
    if exc.errno not in _UNSAFE:
        return exc
    try:
        found = kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        found = expected
    if found == expected:  # gone or replaced since the open failed
        found = f"a symlink or not {expected}"
    return UnsafePathError(
        f"{'/'.join(shown)} on the mount is {found}, not {expected}: symlinks are never followed, and "
        f"FIFOs, sockets and devices never opened, under MOUNT_ROOT. Remove it (or its object from "
        f"the bucket) and retry"
    )


def kind(mode: int) -> str:
    """What a file of ``mode`` is, as messages name it: "a directory", "a socket"..."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    )
    return next((name for test, name in kinds if test(mode)), "a device")
