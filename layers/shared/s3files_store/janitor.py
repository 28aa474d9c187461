"""Remove orphan staging files left by commits that crashed between create and rename.

Only regular ``*.tmp`` files directly inside ``<root>/.staging`` whose mtime is older than the
cutoff are removed; nothing outside ``.staging`` is touched, and symlinks and directories are never
followed or removed (``.staging`` is reached through :mod:`s3files_store.tree` and entries are
unlinked relative to its descriptor).

A staging file belongs to a live commit for at most the committing function's timeout, so the
cutoff is never younger than COMMIT_TIMEOUT_SECONDS plus a grace (:attr:`Config.min_staging_age_seconds`).
Ages are judged by the file system's clock, not the function's: mtimes are set by the NFS server,
so the sweep reads "now" from the mtime of a probe file it creates (and removes) in ``.staging``.

Example:
    >>> sweep(Path("/mnt/s3data"), older_than_seconds=960, max_deletions=1000)
    SweepResult(removed=3, kept=1, errors=0, truncated=False)
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3files_store import tree
from s3files_store.exceptions import InvalidRequestError, StorageError
from s3files_store.keys import STAGING_DIR

if TYPE_CHECKING:
    from pathlib import Path

# Ten years: anything larger is a mistake, not a policy (and must not overflow the cutoff).
MAX_AGE_SECONDS = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Counts of one sweep; ``truncated`` means the deletion bound stopped it early."""

    removed: int = 0
    kept: int = 0
    errors: int = 0
    truncated: bool = False


def older_than_seconds(event: object, default: int, minimum: int) -> int:
    """The sweep age from ``event["older_than_seconds"]``, else ``default``.

    The event must be an object (a schedule event has no such field); the value an integer from
    ``minimum`` (the youngest a staging file may be when removed) to ten years. Anything else
    raises :class:`InvalidRequestError`.
    """
    if not isinstance(event, dict):
        raise InvalidRequestError(
            f"the janitor's event must be a JSON object (a schedule event, or "
            f'{{"older_than_seconds": {default}}}); got {type(event).__name__}'
        )
    value = event.get("older_than_seconds")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_AGE_SECONDS:
        raise InvalidRequestError(
            f"older_than_seconds must be an integer from {minimum} to {MAX_AGE_SECONDS} (seconds); got "
            f"{value!r}. Below {minimum} (COMMIT_TIMEOUT_SECONDS plus a grace) a staging file may "
            f"still belong to a running commit"
        )
    return value


def sweep(root: Path, older_than_seconds: int, max_deletions: int, now: float | None = None) -> SweepResult:
    """Delete at most ``max_deletions`` staging files last modified before ``now - older_than_seconds``.

    ``now`` defaults to the file system's clock (the mtime of a probe file in ``.staging``).
    Raises :class:`UnsafePathError` when ``.staging`` is a symlink or not a directory.
    """
    try:
        root_fd = tree.open_root(root)
        try:
            staging_fd = tree.open_dir(root_fd, (STAGING_DIR,))
        finally:
            os.close(root_fd)
    except FileNotFoundError:
        return SweepResult()
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"opening {root / STAGING_DIR}") from exc
    try:
        cutoff = (_file_system_now(staging_fd) if now is None else now) - older_than_seconds
        return _sweep(staging_fd, cutoff, max_deletions)
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"sweep of {root / STAGING_DIR}") from exc
    finally:
        os.close(staging_fd)


def _file_system_now(staging_fd: int) -> float:
    # A *.tmp name: if the sweep dies before the unlink, a later sweep removes the probe.
    name = f"{uuid.uuid4().hex}.tmp"
    fd = os.open(name, tree.CREATE_FLAGS, 0o640, dir_fd=staging_fd)
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=staging_fd)


def _sweep(staging_fd: int, cutoff: float, max_deletions: int) -> SweepResult:
    removed = kept = errors = 0
    truncated = False
    with os.scandir(staging_fd) as entries:
        for entry in entries:
            if removed >= max_deletions:
                truncated = True
                break
            try:
                info = entry.stat(follow_symlinks=False)
                orphan = stat.S_ISREG(info.st_mode) and entry.name.endswith(".tmp")
                if not orphan or info.st_mtime >= cutoff:
                    kept += 1
                    continue
                os.unlink(entry.name, dir_fd=staging_fd)
                removed += 1
            except FileNotFoundError:
                continue  # renamed by its commit or removed by a concurrent sweep
            except OSError:
                errors += 1
    return SweepResult(removed=removed, kept=kept, errors=errors, truncated=truncated)
