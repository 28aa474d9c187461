"""Document ids, the document key layout, and safe resolution of caller-supplied keys.

Layout: ``<DOCUMENT_PREFIX>/YYYY/MM/DD/<id>.json`` (UTC date of the commit), which keeps every
directory bounded: S3 Files imports a directory's whole listing on first access.

Example:
    >>> document_key("documents", validate_id("order-42"), datetime(2026, 11, 27, tzinfo=UTC))
    'documents/2026/11/27/order-42.json'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from s3files_store.exceptions import InvalidRequestError

if TYPE_CHECKING:
    from datetime import datetime

# Where commits stage their files; never a document key, never listed, swept by the janitor.
STAGING_DIR = ".staging"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Key segments: what the writer produces (prefix segments, dates, "<id>.json"). No segment may
# start with "." so ".staging", ".s3files-lost+found-*", "." and ".." are all unreachable.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
MAX_KEY_LENGTH = 1024


def validate_id(value: object, field: str = "id") -> str:
    """Return ``value`` if it is a valid document id, else raise :class:`InvalidRequestError`.

    Valid: a string of 1-128 characters from ``[A-Za-z0-9._-]``, starting with a letter or digit,
    never containing ``..``.
    """
    if not isinstance(value, str):
        raise InvalidRequestError(f"{field} must be a string; got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidRequestError(
            f"{field} {value[:140]!r} is invalid: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            f"starting with a letter or digit, without '..'"
        )
    return value


def document_key(prefix: str, document_id: str, now: datetime) -> str:
    """The root-relative key of document ``document_id`` committed at ``now`` (UTC)."""
    return f"{prefix}/{now:%Y/%m/%d}/{document_id}.json"


def is_key_segment(name: str) -> bool:
    """True when ``name`` can be one segment of a key (so never hidden, never ``.`` or ``..``)."""
    return _SEGMENT.fullmatch(name) is not None


def validate_key(key: object, field: str = "key") -> tuple[str, ...]:
    """Split a root-relative key into segments, refusing anything that could leave the root.

    Refused (:class:`InvalidRequestError`): non-strings, absolute paths, empty segments, ``.`` and
    ``..``, backslashes, NUL, percent-encoding, hidden segments such as ``.staging``.
    """
    if not isinstance(key, str):
        raise InvalidRequestError(f"{field} must be a string; got {type(key).__name__}")
    parts = tuple(key.split("/"))
    if len(key) > MAX_KEY_LENGTH or not all(map(is_key_segment, parts)):
        raise InvalidRequestError(
            f"{field} {key[:200]!r} is invalid: use a relative path such as "
            f"documents/2026/11/27/order-42.json (segments of A-Z a-z 0-9 . _ -, each starting "
            f"with a letter or digit; no leading '/', no '..', no backslash, no {STAGING_DIR})"
        )
    return parts
