"""The writer and reader service layer: events in, committed or parsed documents out.

Size contract: one Lambda response carries at most 6,291,456 bytes, as the runtime encodes it
(``", "`` and ``": "`` separators, non-ASCII as UTF-8). The writer refuses (413) a document whose
reader response, ``{"statusCode": 200, "key": ..., "document": ...}``, would be larger, so every
document it commits can be handed back; the reader loads at most that many bytes and refuses
(413) a stored document, put there by someone else, that would not fit.

Example:
    >>> result = write_document({"id": "order-42", "total": 9}, "req-1", 30_000, get_config())
    >>> read_document(result.key, get_config())
    {'id': 'order-42', 'total': 9}
    >>> latest_key("order-42", get_config()) == result.key
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from s3files_store import mount, tree
from s3files_store.commit import Staging, commit
from s3files_store.exceptions import (
    DeadlineError,
    InvalidRequestError,
    NotFoundError,
    StorageError,
    TooLargeError,
)
from s3files_store.keys import document_key, validate_id, validate_key

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from pathlib import Path

    from s3files_store.commit import CommitResult
    from s3files_store.config import Config

# Lambda's limit for a synchronous invocation's response payload.
RESPONSE_LIMIT_BYTES = 6_291_456
# How far back a read by id looks: a year of daily directories.
MAX_DAYS_SEARCHED = 366
# From this size on, the writer hashes a document (and measures its reader's response, when that
# needs a pass over it) on a second thread while its bytes go to disk; below, a thread costs more.
_MEASURED_BESIDE_BYTES = 1024 * 1024
# The runtime re-encodes a parsed document: one space after each "," and ":" (the writer's compact
# form has none) and, for JSON written by others, numbers such as 1e15 -> 1000000000000000.0.
_MAX_REENCODING_GROWTH = 5


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
    request id. Writing the same id again the same day replaces the document atomically. The event is
    serialized once; from 1 MiB on, the digest (and over 4 MB the measure of the reader's response)
    is computed on a second thread while the bytes go to disk.

    Raises DeadlineError (nothing written) when fewer than DEADLINE_MARGIN_MS remain,
    InvalidRequestError for a bad id or payload (TooLargeError when the reader could not return
    it), UnsafePathError, MountError or StorageError for the file system.
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
    except RecursionError:
        raise InvalidRequestError("the event nests objects or arrays deeper than JSON allows") from None
    key = document_key(config.document_prefix, document_id, clock())
    small = len(data) < _MEASURED_BESIDE_BYTES
    if small:
        _check_fits(key, event, data)  # no pass over the bytes: only one over 4 MB needs counting
    mount.check_mount(config, need_write=True)
    try:
        if small:
            return commit(config.mount_root, key, data)
        return _commit_measured(config.mount_root, key, event, data)
    except StorageError:
        mount.invalidate()
        raise


def read_document(key: object, config: Config) -> Any:
    """The parsed JSON document at ``key``.

    Raises InvalidRequestError (hostile key), NotFoundError (no such file), UnsafePathError (a
    symlink or a non-regular file in the way), TooLargeError (it would not fit a response) or
    StorageError (unreadable, or not valid JSON).
    """
    parts = validate_key(key)
    mount.check_mount(config, need_write=False)
    try:
        data = _load(config, parts)
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundError(f"no document at key {key!r}; list keys with {{'prefix': ...}}") from None
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"read of {key}") from exc
    try:
        document = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        reason = "it nests deeper than the parser allows" if isinstance(exc, RecursionError) else str(exc)
        raise StorageError(
            f"document {key!r} is not valid JSON ({reason}); it was not written by this writer or was "
            f"changed in S3: fix or delete the object"
        ) from None
    text = "/".join(parts)
    if _envelope(text) + _MAX_REENCODING_GROWTH * len(data) > RESPONSE_LIMIT_BYTES:
        _check_returnable(text, document, len(data))
    return document


def latest_key(document_id: object, config: Config) -> str:
    """The key of the newest document committed with ``document_id``, whatever its date.

    Searches the writer's layout, ``<prefix>/YYYY/MM/DD/<id>.json``, newest day first, at most
    :data:`MAX_DAYS_SEARCHED` day directories back. Raises InvalidRequestError (bad id),
    NotFoundError, or StorageError.
    """
    name = f"{validate_id(document_id)}.json"
    prefix = tuple(config.document_prefix.split("/"))
    mount.check_mount(config, need_write=False)
    try:
        with tree.opened(tree.open_root(config.mount_root)) as root_fd:
            top = tree.open_dir(root_fd, prefix)
        with tree.opened(top), contextlib.closing(_days_newest_first(top, prefix)) as days:
            for searched, (day, day_fd) in enumerate(days, 1):
                with contextlib.suppress(FileNotFoundError):
                    os.stat(name, dir_fd=day_fd, follow_symlinks=False)
                    return "/".join((*day, name))
                if searched == MAX_DAYS_SEARCHED:
                    break
    except FileNotFoundError:
        pass
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"search for {name}") from exc
    raise NotFoundError(
        f"no document with id {document_id!r} in the newest {MAX_DAYS_SEARCHED} days under "
        f"{config.document_prefix}/; read an older one by its key, or list keys with {{'prefix': ...}}"
    )


def _days_newest_first(top_fd: int, prefix: tuple[str, ...]) -> Generator[tuple[tuple[str, ...], int]]:
    """The YYYY/MM/DD directories below ``top_fd``, newest first, each open while it is looked in."""
    for year in _dated(top_fd, 4):
        with tree.opened(tree.open_dir(top_fd, (year,), under=prefix)) as year_fd:
            for month in _dated(year_fd, 2):
                with tree.opened(tree.open_dir(year_fd, (month,), under=(*prefix, year))) as month_fd:
                    for day in _dated(month_fd, 2):
                        with tree.opened(tree.open_dir(month_fd, (day,), under=(*prefix, year, month))) as fd:
                            yield (*prefix, year, month, day), fd


def _dated(dir_fd: int, digits: int) -> list[str]:
    """Names of ``digits`` digits in a directory (years, months or days), in descending order."""
    return sorted(
        (n for n in os.listdir(dir_fd) if len(n) == digits and n.isascii() and n.isdigit()), reverse=True
    )


def _load(config: Config, parts: tuple[str, ...]) -> bytes:
    fd, _ = tree.open_key(config.mount_root, parts, RESPONSE_LIMIT_BYTES)
    with os.fdopen(fd, "rb") as file:
        data = file.read(RESPONSE_LIMIT_BYTES + 1)
    if len(data) > RESPONSE_LIMIT_BYTES:  # it grew since fstat
        raise TooLargeError(f"{'/'.join(parts)} grew past {RESPONSE_LIMIT_BYTES:,} bytes while read")
    return data


def _envelope(key: str) -> int:
    """Bytes of the reader's response around the document, as the runtime encodes it."""
    return len(json.dumps({"statusCode": 200, "key": key, "document": None}).encode()) - len("null")


def _commit_measured(root: Path, key: str, event: object, data: bytes) -> CommitResult:
    """commit() for a large document, its two passes besides the serialization hidden behind the
    disk: a second thread measures the reader's response (:func:`_check_fits`) then hashes the
    bytes while they are written and fsynced (hashlib, os.write and os.fsync release the GIL). A
    document that would not fit is refused before the rename: nothing is committed and the staging
    file is removed."""
    from concurrent.futures import ThreadPoolExecutor  # cold starts that never see one skip it

    def fits_then_digest() -> str:
        _check_fits(key, event, data)
        return hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3files-measure") as pool:
        digest = pool.submit(fits_then_digest)
        staging = Staging(root, key)
        staging.write(data)
        return staging.publish(len(data), digest.result)  # awaited after the fsync, before the rename


def _check_fits(key: str, event: object, data: bytes) -> None:
    """Refuse (TooLargeError) a document ``data`` (``event`` serialized compactly) whose reader's
    response would pass the limit.

    The runtime re-encodes it with one space after each "," and ":", which are at most half of the
    bytes: only a large document needs them counted, and measured if some may sit inside strings.
    """
    envelope = _envelope(key)
    if envelope + len(data) * 3 // 2 > RESPONSE_LIMIT_BYTES and (
        envelope + len(data) + data.count(b",") + data.count(b":") > RESPONSE_LIMIT_BYTES
    ):
        _check_returnable(key, event, len(data))


def _check_returnable(key: str, document: object, stored: int) -> None:
    size = _envelope(key) + len(json.dumps(document, ensure_ascii=False).encode())
    if size > RESPONSE_LIMIT_BYTES:
        raise TooLargeError(
            f"document {key} ({stored:,} bytes stored) would make the reader's response {size:,} bytes, "
            f"over Lambda's {RESPONSE_LIMIT_BYTES:,}-byte response limit, so it could never be read "
            f"back: split it into smaller documents (about 4 MB of compact JSON at most)"
        )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} overflows a double")
    return value
