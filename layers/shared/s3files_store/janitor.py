"""Remove orphan staging files left by commits that crashed between create and rename.

Only regular ``*.tmp`` files directly inside ``<root>/.staging`` whose mtime is older than the
cutoff are removed; nothing outside ``.staging`` is touched, symlinks and directories are never
followed or removed (the directory is opened with O_NOFOLLOW and entries are unlinked relative
to it). A live commit's staging file is never older than the function timeout (<= 900 s), so a
cutoff of at least the writer's Timeout is safe.

Example:
    >>> sweep(Path("/mnt/s3data"), older_than_seconds=900, max_deletions=1000)
    SweepResult(removed=3, kept=1, errors=0, truncated=False)
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3files_store.exceptions import InvalidRequestError, StorageError
from s3files_store.keys import STAGING_DIR

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Counts of one sweep; ``truncated`` means the deletion bound stopped it early."""

    removed: int = 0
    kept: int = 0
    errors: int = 0
    truncated: bool = False


def older_than_seconds(event: object, default: int) -> int:
    """The sweep age from ``event["older_than_seconds"]`` (an integer > 0), else ``default``.

    A schedule event has no such field; anything else raises :class:`InvalidRequestError`.
    """
    value = event.get("older_than_seconds") if isinstance(event, dict) else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequestError(f"older_than_seconds must be an integer > 0 (seconds); got {value!r}")
    return value


def sweep(root: Path, older_than_seconds: float, max_deletions: int, now: float | None = None) -> SweepResult:
    """Delete at most ``max_deletions`` staging files last modified before ``now - older_than_seconds``."""
    cutoff = (time.time() if now is None else now) - older_than_seconds
    try:
        dir_fd = os.open(root / STAGING_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return SweepResult()
    except OSError as exc:
        raise StorageError.from_os_error(
            exc, f"opening {root / STAGING_DIR} (it must be a real directory, not a symlink)"
        ) from exc
    removed = kept = errors = 0
    truncated = False
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if removed >= max_deletions:
                    truncated = True
                    break
                try:
                    info = entry.stat(follow_symlinks=False)
                    if (
                        not (stat.S_ISREG(info.st_mode) and entry.name.endswith(".tmp"))
                        or info.st_mtime >= cutoff
                    ):
                        kept += 1
                        continue
                    os.unlink(entry.name, dir_fd=dir_fd)
                    removed += 1
                except FileNotFoundError:
                    continue  # renamed by its commit or removed by a concurrent sweep
                except OSError:
                    errors += 1
    finally:
        os.close(dir_fd)
    return SweepResult(removed=removed, kept=kept, errors=errors, truncated=truncated)
