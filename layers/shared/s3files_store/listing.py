"""Page through the document keys under a prefix, in sorted order, without trusting the tree.

Keys come in the order of their segments (``documents/2026/11/27/a.json`` before
``documents/2026/11/28/``), and a page ends with a cursor: the last key returned, or the last
entry finished when a page stops early (a directory there means its whole subtree is done). Only
regular files whose every segment is a valid key segment are listed: never hidden names (so never
``.staging``, the only place commits stage their ``*.tmp`` files), symlinks, FIFOs or devices.
Directories are reached through :mod:`s3files_store.tree`, so a symlink or a swap is never
followed, and nothing deeper than :data:`MAX_DEPTH` levels below the prefix is visited. A
directory this function may not read (another user's ``0700`` directory) is skipped and logged as
``entry skipped`` with its key and the reason; the page fails only when the prefix itself cannot
be read, or on any other error (EIO, ESTALE: the mount's).

Cost of a page, however the tree looks: at most ``limit + 2 * MAX_DEPTH`` directory reads (a page
that would need more ends early, possibly short or empty, with a cursor to continue from), and
one stat per entry it steps on. Memory does not grow with a directory: each directory is streamed
and only the smallest names past the cursor that the page can still use are kept (at most
``2 * limit + 2 * MAX_DEPTH + 2`` in each open directory, one per level); skipped entries
(symlinks, FIFOs, unreadable ones) that use up a directory's kept names end the page there,
early, with a cursor inside that directory. ``readdir`` has no order to resume from, so a
page still reads every directory it passes through whole: a page in a directory of n entries
costs O(n log limit) time. Keep directories bounded (the writer's layout gives one directory per
UTC day).

Example:
    >>> list_documents("documents/2026/11", get_config(), limit=2)
    (['documents/2026/11/27/a.json', 'documents/2026/11/27/b.json'], 'documents/2026/11/27/b.json')
"""

from __future__ import annotations

import errno
import heapq
import os
import stat
from typing import TYPE_CHECKING, NamedTuple

from s3files_store import mount, tree
from s3files_store.exceptions import InvalidRequestError, StorageError, UnsafePathError
from s3files_store.keys import MAX_KEY_LENGTH, is_key_segment, validate_key
from s3files_store.observability import logger

if TYPE_CHECKING:
    from s3files_store.config import Config

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The writer's keys are 4 levels below DOCUMENT_PREFIX; deeper trees are someone else's.
MAX_DEPTH = 16

Key = tuple[str, ...]


class _Frame(NamedTuple):
    """A directory being walked: its descriptor, its key, the names still to visit (largest
    first, so ``pop()`` gives the next one) and whether it holds more than were selected."""

    fd: int
    path: Key
    names: list[str]
    more: bool


def list_documents(
    prefix: object, config: Config, limit: object = DEFAULT_LIMIT, cursor: object = None
) -> tuple[list[str], str | None]:
    """Up to ``limit`` keys under directory ``prefix`` ("" is the whole root) after ``cursor``,
    and the cursor of the next page (``None`` when there is no more).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}; got {limit!r}")
    base: Key = () if prefix == "" else validate_key(prefix, "prefix")
    after = None if cursor is None else validate_key(cursor, "cursor")
    if after is not None and (after == base or (after[: len(base)] != base and after > base)):
        return [], None  # the cursor is past everything under the prefix
    mount.check_mount(config, need_write=False)
    try:
        root_fd = tree.open_root(config.mount_root)
        try:
            start_fd = tree.open_dir(root_fd, base)
        finally:
            os.close(root_fd)
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"listing of {prefix!r}") from exc
    try:
        found, last = _page(start_fd, base, after, limit)
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"listing of {prefix!r}") from exc
    return ["/".join(key) for key in found], None if last is None else "/".join(last)


def _page(start_fd: int, base: Key, after: Key | None, limit: int) -> tuple[list[Key], Key | None]:
    """Keys after ``after`` below ``base`` (open as ``start_fd``, which it closes), and the cursor
    of the next page.
    """
    found: list[Key] = []
    done = after
    # Enough to walk down the cursor's path and then down one more chain of MAX_DEPTH directories,
    # so every page moves the cursor forward.
    reads = limit + 2 * MAX_DEPTH
    # Every name a directory keeps is a file the page can still take (and one more, to know
    # whether there is a next page) or a directory it can still read: only skipped entries can
    # use up a directory's names before the page is full.
    stack = [_frame(start_fd, base, after, limit + reads + 1)]
    try:
        while stack:
            fd, path, names, more = stack[-1]
            if not names:
                if more:  # the next page reads this directory again, from the cursor on
                    return found, done
                os.close(fd)
                stack.pop()
                done = path if len(path) > len(base) else done
                continue
            here = (*path, names.pop())
            mode = _mode(fd, here)
            if stat.S_ISDIR(mode) and len(here) - len(base) < MAX_DEPTH:
                if reads == 0:
                    return found, done
                reads -= 1
                wanted = limit - len(found) + reads + 1
                child = _open(fd, here, after, wanted)
                if child is not None:
                    stack.append(child)
                    continue
            elif stat.S_ISREG(mode) and (after is None or here > after):
                if len(found) == limit:
                    return found, found[-1]
                found.append(here)
            done = here
    finally:
        for frame in stack:
            os.close(frame.fd)
    return found, None


def _mode(dir_fd: int, here: Key) -> int:
    """The file type and mode of entry ``here`` in ``dir_fd``; 0 when it is gone or unreadable."""
    try:
        return os.stat(here[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return 0  # removed since the directory was read
    except PermissionError as exc:
        _skipped(here, exc)
        return 0


def _open(parent_fd: int, here: Key, after: Key | None, wanted: int) -> _Frame | None:
    """The frame of subdirectory ``here``; ``None`` when it is gone, unsafe or unreadable."""
    try:
        return _frame(tree.open_dir(parent_fd, here[-1:], under=here[:-1]), here, after, wanted)
    except (FileNotFoundError, UnsafePathError):
        return None  # removed, or swapped for a symlink, since the stat
    except PermissionError as exc:
        _skipped(here, exc)
        return None


def _skipped(here: Key, exc: OSError) -> None:
    code = errno.errorcode.get(exc.errno or 0, "OSError")
    logger.warning(
        "entry skipped",
        extra={
            "entry": "/".join(here),
            "reason": f"{exc.strerror or exc} [{code}]: this function's POSIX user (the access point's "
            f"PosixUser) may not read it; make it readable to that user or its group, or move it out "
            f"of the listed prefix",
        },
    )


def _frame(fd: int, path: Key, after: Key | None, wanted: int) -> _Frame:
    """Directory ``fd`` at ``path`` with its ``wanted`` smallest listable names after the cursor
    (``fd`` is closed if it cannot be read)."""
    room = MAX_KEY_LENGTH - len("/".join(path)) - 1
    mark = ""
    below = False
    if after is not None and len(after) > len(path) and after[: len(path)] == path:
        mark = after[len(path)]
        # The cursor's own entry stays only when the cursor lies below it (a directory in progress).
        below = len(after) > len(path) + 1
    try:
        with os.scandir(fd) as entries:
            # A generator: the directory's names stream through a heap of wanted + 1, never a list.
            names = heapq.nsmallest(
                wanted + 1,
                (
                    name
                    for name in (entry.name for entry in entries)
                    if (name > mark or (below and name == mark))
                    and len(name) <= room
                    and is_key_segment(name)
                ),
            )
    except BaseException:
        os.close(fd)
        raise
    more = len(names) > wanted
    del names[wanted:]
    names.reverse()
    return _Frame(fd, path, names, more)
