"""The writer and reader service layer: events in, committed or parsed documents out.

Example:
    >>> result = write_document({"id": "order-42", "total": 9}, "req-1", 30_000, get_config())
    >>> read_document(result.key, get_config())
    {'id': 'order-42', 'total': 9}
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from s3files_store import mount
from s3files_store.commit import commit
from s3files_store.exceptions import DeadlineError, InvalidRequestError, NotFoundError, StorageError
from s3files_store.keys import document_key, resolve_key, validate_id, validate_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from s3files_store.commit import CommitResult
    from s3files_store.config import Config

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def write_document(
    event: object,
    request_id: str,
    remaining_ms: int,
    config: Config,
    clock: Callable[[], datetime] = _utc_now,
) -> CommitResult:
    """Commit ``event`` as ``<prefix>/YYYY/MM/DD/<id>.json``; the id is ``event[ID_FIELD]`` or the
    request id. Writing the same id again the same day replaces the document atomically.

    Raises DeadlineError (nothing written) when fewer than DEADLINE_MARGIN_MS remain,
    InvalidRequestError for a bad id or payload, MountError or StorageError for the file system.
    """
    if remaining_ms < config.deadline_margin_ms:
        raise DeadlineError(
            f"only {remaining_ms} ms left, fewer than DEADLINE_MARGIN_MS={config.deadline_margin_ms}: "
            f"nothing was written; raise the function Timeout or lower DEADLINE_MARGIN_MS"
        )
    if not isinstance(event, dict):
        raise InvalidRequestError(f"the event must be a JSON object; got {type(event).__name__}")
    if config.id_field in event:
        document_id = validate_id(event[config.id_field], config.id_field)
    else:
        document_id = validate_id(request_id, "request id")
    try:
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the event is not serializable as strict JSON: {exc}") from None
    mount.check_mount(config, need_write=True)
    try:
        return commit(config.mount_root, document_key(config.document_prefix, document_id, clock()), data)
    except StorageError:
        mount.invalidate()
        raise


def read_document(key: object, config: Config) -> Any:
    """The parsed JSON document at ``key``.

    Raises InvalidRequestError (hostile key), NotFoundError (no such file) or StorageError
    (unreadable, or not valid JSON).
    """
    mount.check_mount(config, need_write=False)
    path = resolve_key(config.mount_root, key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            data = file.read()
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundError(f"no document at key {key!r}; list keys with {{'prefix': ...}}") from None
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"read of {key}") from exc
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StorageError(
            f"document {key!r} is not valid JSON ({exc}); it was not written by this writer or was "
            f"changed in S3: fix or delete the object"
        ) from None


def list_documents(
    prefix: object, config: Config, limit: object = DEFAULT_LIMIT, cursor: object = None
) -> tuple[list[str], str | None]:
    """Up to ``limit`` keys under directory ``prefix`` in sorted order, and the cursor for the next
    page (the last key returned, ``None`` when there is no more). ``prefix`` "" lists the whole root.
    Staging files, hidden entries, ``*.tmp`` and symlinks are never listed.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}; got {limit!r}")
    after = None if cursor is None else validate_key(cursor, "cursor")
    mount.check_mount(config, need_write=False)
    start: Path
    parts: tuple[str, ...]
    if prefix == "":
        start, parts = config.mount_root, ()
    else:
        start, parts = resolve_key(config.mount_root, prefix, "prefix"), validate_key(prefix, "prefix")
    keys = ["/".join(found) for found in itertools.islice(_walk(start, parts, after), limit + 1)]
    more = len(keys) > limit
    return keys[:limit], keys[limit - 1] if more else None


def _walk(
    directory: Path | str, parts: tuple[str, ...], after: tuple[str, ...] | None
) -> Iterator[tuple[str, ...]]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue
        here = (*parts, entry.name)
        # Skip whole subtrees that sort before the cursor.
        if after is not None and here < after[: len(here)]:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, here, after)
        elif entry.is_file(follow_symlinks=False) and (after is None or here > after):
            yield here
