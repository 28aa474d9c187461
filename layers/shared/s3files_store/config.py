"""Settings read once per execution environment from the function's environment.

Example:
    >>> config = Config.from_env({"MOUNT_ROOT": "/mnt/s3data"})
    >>> config.document_prefix, config.deadline_margin_ms, config.staging_max_age_seconds
    ('documents', 3000, 960)
    >>> config.archive_max_members, config.archive_max_bytes
    (10000, 10737418240)
    >>> config.access_point_root, config.upload_prefix, config.extract_prefix
    ('lambda', 'uploads', 'extracted')

Handlers call :func:`get_config` at invoke time (cached after the first call); tests change the
environment and call ``get_config.cache_clear()``.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from s3files_store.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Same alphabet as document ids; a leading "." is refused so the prefix can never reach ".staging".
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
# Lambda's longest timeout: a commit can never run longer, so it is the safe default.
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# Added to the longest commit before a staging file counts as abandoned (clock steps, slow NFS).
STAGING_GRACE_SECONDS = 60
# The most one extraction (the unzip function) writes: an archive over either limit is refused
# before anything is written. ARCHIVE_MAX_MEMBERS and ARCHIVE_MAX_BYTES raise them.
ARCHIVE_MAX_MEMBERS = 10_000
ARCHIVE_MAX_BYTES = 10 * 1024**3
# A key prefix of segments (the upload pipeline's UPLOAD_PREFIX, EXTRACT_PREFIX), "/" at the end optional.
_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,127}/){0,8}[A-Za-z0-9][A-Za-z0-9._-]{0,127}/?")


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings. ``mount_root`` is the function's S3 Files ``LocalMountPath``."""

    mount_root: Path
    require_mount: bool = False
    document_prefix: str = "documents"
    id_field: str = "id"
    deadline_margin_ms: int = 3000
    commit_timeout_seconds: int = LAMBDA_MAX_TIMEOUT_SECONDS
    staging_max_age_seconds: int = LAMBDA_MAX_TIMEOUT_SECONDS + STAGING_GRACE_SECONDS
    janitor_max_deletions: int = 1000
    archive_max_members: int = ARCHIVE_MAX_MEMBERS
    archive_max_bytes: int = ARCHIVE_MAX_BYTES
    # The upload pipeline (s3files_store.pipeline): the access point's root directory without its
    # leading "/" (the S3 key prefix of the mount root), and the key prefixes below it, without "/".
    access_point_root: str = "lambda"
    upload_prefix: str = "uploads"
    extract_prefix: str = "extracted"

    @property
    def min_staging_age_seconds(self) -> int:
        """The youngest a staging file may be when the janitor removes it: a commit still running
        (at most COMMIT_TIMEOUT_SECONDS) may own anything younger."""
        return self.commit_timeout_seconds + STAGING_GRACE_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        """Read and validate the settings; raise :class:`ConfigError` naming the bad variable."""
        root = environ.get("MOUNT_ROOT", "")
        if not root.startswith("/"):
            raise ConfigError(
                f"MOUNT_ROOT must be an absolute path equal to the function's FileSystemConfigs "
                f"LocalMountPath (e.g. /mnt/s3data); got {root!r}"
            )
        require = environ.get("REQUIRE_MOUNT", "false").strip().lower()
        if require not in _BOOLEANS:
            raise ConfigError(f"REQUIRE_MOUNT must be 'true' or 'false'; got {require!r}")
        prefix = environ.get("DOCUMENT_PREFIX", "documents")
        if not all(_SEGMENT.fullmatch(part) and ".." not in part for part in prefix.split("/")):
            raise ConfigError(
                f"DOCUMENT_PREFIX must be a relative path of segments matching "
                f"[A-Za-z0-9][A-Za-z0-9._-]* without '..' or empty segments (e.g. documents); got {prefix!r}"
            )
        id_field = environ.get("ID_FIELD", "id")
        if not id_field:
            raise ConfigError("ID_FIELD must name the event field that holds the document id (e.g. id)")
        timeout = _integer(
            environ, "COMMIT_TIMEOUT_SECONDS", LAMBDA_MAX_TIMEOUT_SECONDS, 1, LAMBDA_MAX_TIMEOUT_SECONDS
        )
        youngest = timeout + STAGING_GRACE_SECONDS
        max_age = _integer(environ, "STAGING_MAX_AGE_SECONDS", youngest, 1, 10 * 365 * 86400)
        if max_age < youngest:
            raise ConfigError(
                f"STAGING_MAX_AGE_SECONDS={max_age} would let the janitor remove the staging file of a "
                f"commit still running: set it to at least COMMIT_TIMEOUT_SECONDS={timeout} + "
                f"{STAGING_GRACE_SECONDS} = {youngest} (COMMIT_TIMEOUT_SECONDS is the longest Timeout of "
                f"the functions that commit on this mount)"
            )
        upload, extract = (
            _prefix(environ, "UPLOAD_PREFIX", "uploads/"),
            _prefix(environ, "EXTRACT_PREFIX", "extracted/"),
        )
        if f"{upload}/".startswith(f"{extract}/") or f"{extract}/".startswith(f"{upload}/"):
            raise ConfigError(
                f"UPLOAD_PREFIX={upload + '/'!r} and EXTRACT_PREFIX={extract + '/'!r} overlap: an archive "
                f"extracted into the uploads would be extracted again. Choose separate prefixes"
            )
        return cls(
            mount_root=Path(root),
            require_mount=_BOOLEANS[require],
            document_prefix=prefix,
            id_field=id_field,
            deadline_margin_ms=_integer(environ, "DEADLINE_MARGIN_MS", 3000, 0, 900_000),
            commit_timeout_seconds=timeout,
            staging_max_age_seconds=max_age,
            janitor_max_deletions=_integer(environ, "JANITOR_MAX_DELETIONS", 1000, 1, 1_000_000),
            archive_max_members=_integer(environ, "ARCHIVE_MAX_MEMBERS", ARCHIVE_MAX_MEMBERS, 1, 1_000_000),
            archive_max_bytes=_integer(environ, "ARCHIVE_MAX_BYTES", ARCHIVE_MAX_BYTES, 1, 2**50),
            access_point_root=_access_point_root(environ.get("ACCESS_POINT_ROOT_PATH", "/lambda")),
            upload_prefix=upload,
            extract_prefix=extract,
        )


def _access_point_root(raw: str) -> str:
    root = raw.strip("/")
    if not raw.startswith("/") or not _PREFIX.fullmatch(root) or ".." in root:
        raise ConfigError(
            f"ACCESS_POINT_ROOT_PATH must be the access point's RootDirectory.Path, an absolute path of "
            f"segments matching [A-Za-z0-9][A-Za-z0-9._-]* (e.g. /lambda); got {raw!r}"
        )
    return root


def _prefix(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "") or default
    if not _PREFIX.fullmatch(raw) or ".." in raw:
        raise ConfigError(
            f"{name} must be a relative key prefix of segments matching [A-Za-z0-9][A-Za-z0-9._-]*, "
            f"ending in '/' (e.g. {default}); got {raw!r}"
        )
    return raw.removesuffix("/")


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be an integer from {minimum} to {maximum}; got {raw!r}")
    return value


@functools.cache
def get_config() -> Config:
    """The process-wide :class:`Config`, read from ``os.environ`` on first use."""
    return Config.from_env()
