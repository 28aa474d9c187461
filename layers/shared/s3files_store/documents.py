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
import heapq
import json
import math
import os
import re
import stat
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3files_store import mount, tree
from s3files_store.commit import Staging, commit
from s3files_store.exceptions import (
    DeadlineError,
    InvalidRequestError,
    NotFoundError,
    StorageError,
    TooLargeError,
    UnsafePathError,
)
from s3files_store.keys import document_key, validate_id, validate_key
from s3files_store.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from pathlib import Path

    from s3files_store.commit import CommitResult
    from s3files_store.config import Config

# Lambda's limit for a synchronous invocation's response payload.
RESPONSE_LIMIT_BYTES = 6_291_456
# How far back a read by id looks: a year of daily directories.
MAX_DAYS_SEARCHED = 366
# Directories a read by id opens below the prefix, years, months and days together: the 366 days,
# the at most 14 months and 3 years they span, and room for a few empty ones.
MAX_DIRECTORIES_READ = 400
# Skipped entries a read by id names in its warnings; the others are counted in one more.
MAX_WARNINGS = 20
_ONE_DAY = timedelta(days=1)
# A lone surrogate in a stored document: a \uD800-\uDFFF escape, or its bytes (which json.loads
# decodes with "surrogatepass"). A match means "look closer": an escaped pair is fine. The regular
# expression runs only where one of these substrings (found at memchr speed) says it may match.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE_HINTS = (b"\\ud", b"\\uD", b"\xed")
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

    Raises InvalidRequestError (hostile key, or a document holding text a Lambda response cannot
    carry), NotFoundError (no such file), UnsafePathError (a symlink, a directory or another
    non-regular file at the key or on its path, or a file with several hard links),
    TooLargeError (it would not fit a response) or StorageError (unreadable, or not valid JSON).
    """
    parts = validate_key(key)
    text = "/".join(parts)
    mount.check_mount(config, need_write=False)
    try:
        data = _load(config, parts)
    except FileNotFoundError:
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
    may_hold_surrogate = any(hint in data for hint in _SURROGATE_HINTS) and _SURROGATE.search(data)
    if may_hold_surrogate or _envelope(text) + _MAX_REENCODING_GROWTH * len(data) > RESPONSE_LIMIT_BYTES:
        _check_response(text, document, len(data))
    return document


def latest_key(document_id: object, config: Config, clock: Callable[[], datetime] = _utc_now) -> str:
    """The key of the newest document committed with ``document_id``, whatever its date.

    Searches the writer's layout, ``<prefix>/YYYY/MM/DD/<id>.json``, newest day first, through at
    most :data:`MAX_DAYS_SEARCHED` day directories. Worst case, whatever was planted: the walk to
    the prefix, then at most :data:`MAX_DIRECTORIES_READ` directories opened below it (years,
    months and days together, at most MAX_DAYS_SEARCHED of them days), the prefix, year and month
    directories each read once as a stream (at most MAX_DIRECTORIES_READ names kept), one stat of
    ``<id>.json`` per day, and one of each entry dated after the Lambda clock's tomorrow or whose
    type ``readdir`` does not give.

    Skipped with an "entry skipped" warning naming them (the first :data:`MAX_WARNINGS`; then a
    count): entries whose names are not dates of that layout, or that are not directories, that
    cannot be read, or that are dated after tomorrow by both this function's ``clock`` and the
    file system's (the entry's ctime, set by the server when it was created or changed, so a
    planted future date is refused and a slow Lambda clock hides nothing); and an ``<id>.json``
    that is not a regular file with one link, so the older document behind it is found.

    Raises InvalidRequestError (bad id), NotFoundError, UnsafePathError (the prefix itself is
    a symlink or not a directory), or StorageError.
    """
    name = f"{validate_id(document_id)}.json"
    prefix = tuple(config.document_prefix.split("/"))
    mount.check_mount(config, need_write=False)
    search = _Search(prefix, clock().date() + _ONE_DAY)
    key = None
    try:
        with tree.opened(tree.open_root(config.mount_root)) as root_fd:
            top = tree.open_dir(root_fd, prefix)
        with tree.opened(top), contextlib.closing(_days_newest_first(search, top)) as days:
            for day, day_fd in days:
                if search.holds(day_fd, day, name):
                    key = "/".join((*day, name))
                    break
    except FileNotFoundError:
        pass
    except OSError as exc:
        mount.invalidate()
        raise StorageError.from_os_error(exc, f"search under {config.document_prefix}/ for {name}") from exc
    finally:
        search.log_unnamed()
    if key is not None:
        return key
    stopped = (
        f"; it stopped at its budget of {MAX_DIRECTORIES_READ} directories opened" if search.spent else ""
    )
    raise NotFoundError(
        f"no document with id {document_id!r} under {config.document_prefix}/ (day directories searched, "
        f"newest first: {search.days} of at most {MAX_DAYS_SEARCHED}{stopped}); read an older one by its "
        f"key, or list keys with {{'prefix': ...}}"
    )


def _days_newest_first(search: _Search, top_fd: int) -> Generator[tuple[tuple[str, ...], int]]:
    """The YYYY/MM/DD directories below ``top_fd``, newest first, each open while it is looked in,
    until MAX_DAYS_SEARCHED days are searched or the directory budget is spent."""
    top = search.prefix
    for year, year_fd in search.subdirs(top_fd, top):
        for month, month_fd in search.subdirs(year_fd, (*top, year)):
            for day, day_fd in search.subdirs(month_fd, (*top, year, month)):
                search.days += 1
                yield (*top, year, month, day), day_fd
                if search.days == MAX_DAYS_SEARCHED:
                    return


class _Search:
    """One read by id's budget (directories opened, days searched) and its skipped entries."""

    def __init__(self, prefix: tuple[str, ...], tomorrow: date) -> None:
        self.prefix = prefix
        self.tomorrow = tomorrow  # by the Lambda clock; the file system's may vouch for later
        self.opened = 0
        self.days = 0
        self.spent = False
        self.skipped = 0

    def subdirs(self, dir_fd: int, parts: tuple[str, ...]) -> Iterator[tuple[str, int]]:
        """The dated directories in ``dir_fd`` (``parts`` below the root), newest first, each open
        while the caller uses it; it stops when MAX_DIRECTORIES_READ have been opened."""
        for name in self._dated(dir_fd, parts):
            if self.opened == MAX_DIRECTORIES_READ:
                self.spent = True
                return
            self.opened += 1
            try:
                child = tree.open_dir(dir_fd, (name,), under=parts)
            except (PermissionError, FileNotFoundError, UnsafePathError) as exc:
                self.skip((*parts, name), _why(exc))
                continue
            with tree.opened(child):
                yield name, child

    def _dated(self, dir_fd: int, parts: tuple[str, ...]) -> list[str]:
        """Names of the plausible dated directories in ``dir_fd``, newest first, at most
        MAX_DIRECTORIES_READ: the directory is streamed, never held whole."""
        try:
            with os.scandir(dir_fd) as entries:
                return heapq.nlargest(
                    MAX_DIRECTORIES_READ, (entry.name for entry in entries if self._plausible(entry, parts))
                )
        except PermissionError as exc:
            self.skip(parts, _why(exc))
            return []

    def _plausible(self, entry: os.DirEntry[str], parts: tuple[str, ...]) -> bool:
        if entry.name.startswith("."):  # hidden: never a key (staging, NFS silly renames)
            return False
        first = _first_day((*parts[len(self.prefix) :], entry.name))
        try:
            if first is None:
                reason = "its name is not a date of the writer's layout (YYYY/MM/DD)"
            elif not entry.is_dir(follow_symlinks=False):
                reason = f"it is {tree.kind(entry.stat(follow_symlinks=False).st_mode)}, not a directory"
            elif first > self.tomorrow and first > (changed := _ctime_date(entry)) + _ONE_DAY:
                reason = f"it is dated after tomorrow by the file system's clock (it changed on {changed})"
            else:
                return True
        except FileNotFoundError:  # removed since the directory was read
            return False
        self.skip((*parts, entry.name), reason)
        return False

    def holds(self, day_fd: int, day: tuple[str, ...], name: str) -> bool:
        """Whether the day directory holds a document ``name``: a regular file with one link."""
        try:
            info = os.stat(name, dir_fd=day_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except PermissionError as exc:
            self.skip(day, _why(exc))
            return False
        if not stat.S_ISREG(info.st_mode):
            what = tree.kind(info.st_mode)
        elif info.st_nlink > 1:
            what = f"a file with {info.st_nlink} hard links"
        else:
            return True
        self.skip((*day, name), f"it is {what}, not a document: older days are searched")
        return False

    def skip(self, parts: tuple[str, ...], reason: str) -> None:
        """Log a skipped entry (the first MAX_WARNINGS of a search by name, the rest counted)."""
        self.skipped += 1
        if self.skipped <= MAX_WARNINGS:
            logger.warning("entry skipped", extra={"entry": "/".join(parts), "reason": reason})

    def log_unnamed(self) -> None:
        if self.skipped > MAX_WARNINGS:
            logger.warning(
                "entries skipped",
                extra={
                    "count": self.skipped - MAX_WARNINGS,
                    "reason": f"more skipped entries than the {MAX_WARNINGS} named: remove what is not the "
                    f"writer's under {'/'.join(self.prefix)}/",
                },
            )


def _first_day(dated: tuple[str, ...]) -> date | None:
    """The first day a YYYY, YYYY/MM or YYYY/MM/DD directory stands for (None: not a date)."""
    if not all(
        len(n) == width and n.isascii() and n.isdigit()
        for n, width in zip(dated, (4, 2, 2)[: len(dated)], strict=True)
    ):
        return None
    numbers = [int(n) for n in dated] + [1] * (3 - len(dated))
    try:
        return date(*numbers)
    except ValueError:  # year 0000, month 13, February 30...
        return None


def _ctime_date(entry: os.DirEntry[str]) -> date:
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_ctime, UTC).date()


def _why(exc: Exception) -> str:
    if isinstance(exc, PermissionError):
        return "it cannot be read (permission denied: it belongs to another user or access point)"
    if isinstance(exc, FileNotFoundError):
        return "it was removed while the search ran"
    return str(exc)


def _load(config: Config, parts: tuple[str, ...]) -> bytes:
    shown = "/".join(parts)
    try:
        fd, _ = tree.open_key(config.mount_root, parts, RESPONSE_LIMIT_BYTES)
    except IsADirectoryError:
        raise UnsafePathError(
            f"{shown} on the mount is a directory, not a document: read a key below it (list them with "
            f"{{'prefix': {shown!r}}}), or remove the directory if a document belongs there"
        ) from None
    with os.fdopen(fd, "rb") as file:
        data = file.read(RESPONSE_LIMIT_BYTES + 1)
    if len(data) > RESPONSE_LIMIT_BYTES:  # it grew since fstat
        raise TooLargeError(f"{shown} grew past {RESPONSE_LIMIT_BYTES:,} bytes while read")
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
        _check_response(key, event, len(data))


def _check_response(key: str, document: object, stored: int) -> None:
    """Refuse a document the reader could not send back, measured by one encoding of it as the
    runtime makes it (at C speed): text with no UTF-8 form (InvalidRequestError), or a response
    over Lambda's limit (TooLargeError)."""
    try:
        size = _envelope(key) + len(json.dumps(document, ensure_ascii=False).encode())
    except UnicodeEncodeError:
        raise InvalidRequestError(
            f"document {key} holds a lone surrogate (a \\uD800-\\uDFFF escape with no pair, or its "
            f"bytes) at {_lone_surrogate(document)}: that text has no UTF-8 form, so it cannot be sent "
            f"as a Lambda response; it was not written by this writer: fix or delete the object"
        ) from None
    if size > RESPONSE_LIMIT_BYTES:
        raise TooLargeError(
            f"document {key} ({stored:,} bytes stored) would make the reader's response {size:,} bytes, "
            f"over Lambda's {RESPONSE_LIMIT_BYTES:,}-byte response limit, so it could never be read "
            f"back: split it into smaller documents (about 4 MB of compact JSON at most)"
        )


def _lone_surrogate(document: object) -> str | None:
    """The JSON path of the first string or member name holding a lone surrogate (None: none)."""
    stack: list[tuple[str, Iterator[tuple[str, object]]]] = [("$", iter([("", document)]))]
    while stack:
        path, children = stack[-1]
        step = next(children, None)
        if step is None:
            stack.pop()
            continue
        here = path + step[0]
        value = step[1]
        if isinstance(value, str) and not _encodable(value):
            return here
        if isinstance(value, dict):
            name = next((name for name in value if not _encodable(name)), None)
            if name is not None:
                return f"{here}, in the member name {json.dumps(name)}"
            stack.append((here, ((f"[{json.dumps(n)}]", v) for n, v in value.items())))
        elif isinstance(value, list):
            stack.append((here, ((f"[{i}]", v) for i, v in enumerate(value))))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} overflows a double")
    return value
