"""Page through the document keys under a prefix, in sorted order, without trusting the tree.

Keys come in the order of their segments (``documents/2026/11/27/a.json`` before
``documents/2026/11/28/``), and a page ends with a cursor: the last key returned, or the last
directory finished when a page stops early. Only regular files whose every segment is a valid key
segment are listed (never hidden names, ``.staging``, ``*.tmp``, symlinks, FIFOs or devices);
directories are reached through :mod:`s3files_store.tree`, so a symlink or a swap is never
followed, and nothing deeper than :data:`MAX_DEPTH` levels below the prefix is visited.

Cost of a page, however the tree looks: at most ``limit + 2 * MAX_DEPTH`` directory reads (a page
that would need more ends early, possibly short or empty, with a cursor to continue from), and
one stat per entry it steps on. A directory is read whole (``readdir`` has no order to resume
from), its entries past the cursor heap-selected rather than sorted, so a page in a directory of
n entries costs O(n + limit log n): keep directories bounded (the writer's layout gives one
directory per UTC day).

Example:
    >>> list_documents("documents/2026/11", get_config(), limit=2)
    (['documents/2026/11/27/a.json', 'documents/2026/11/27/b.json'], 'documents/2026/11/27/b.json')
"""

from __future__ import annotations

import heapq
import os
import stat
from typing import TYPE_CHECKING

from s3files_store import mount, tree
from s3files_store.exceptions import InvalidRequestError, StorageError, UnsafePathError
from s3files_store.keys import MAX_KEY_LENGTH, is_key_segment, validate_key

if TYPE_CHECKING:
    from s3files_store.config import Config

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The writer's keys are 4 levels below DOCUMENT_PREFIX; deeper trees are someone else's.
MAX_DEPTH = 16

Key = tuple[str, ...]


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
    of the next page. A cursor that is a directory means its whole subtree is done.
    """
    found: list[Key] = []
    done = after
    # Enough to walk down the cursor's path and then down one more chain of MAX_DEPTH directories,
    # so every page moves the cursor forward.
    reads = limit + 2 * MAX_DEPTH
    stack = [_frame(start_fd, base, after)]
    try:
        while stack:
            fd, path, heap = stack[-1]
            if not heap:
                os.close(fd)
                stack.pop()
                done = path if len(path) > len(base) else done
                continue
            here = (*path, heapq.heappop(heap))
            try:
                mode = os.stat(here[-1], dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue  # removed since the directory was read
            if stat.S_ISREG(mode):
                if len(found) == limit:
                    return found, found[-1]
                found.append(here)
            elif stat.S_ISDIR(mode) and len(here) - len(base) < MAX_DEPTH:
                if reads == 0:
                    return found, done
                reads -= 1
                try:
                    stack.append(_frame(tree.open_dir(fd, here[-1:], under=path), here, after))
                    continue
                except (FileNotFoundError, UnsafePathError):
                    pass  # removed, or swapped for a symlink, since the stat
            done = here
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    return found, None


def _frame(fd: int, path: Key, after: Key | None) -> tuple[int, Key, list[str]]:
    """A walk step: directory ``fd`` at ``path`` and, as a heap, its listable names that sort
    after the cursor (``fd`` is closed if it cannot be read)."""
    room = MAX_KEY_LENGTH - len("/".join(path)) - 1
    try:
        with os.scandir(fd) as entries:
            names = [
                entry.name
                for entry in entries
                if len(entry.name) <= room and is_key_segment(entry.name) and not entry.name.endswith(".tmp")
            ]
    except BaseException:
        os.close(fd)
        raise
    if after is not None and len(after) > len(path) and after[: len(path)] == path:
        mark = after[len(path)]
        # The cursor's own entry stays only when the cursor lies below it (a directory in progress).
        names = [name for name in names if name > mark or (name == mark and len(after) > len(path) + 1)]
    heapq.heapify(names)
    return fd, path, names
