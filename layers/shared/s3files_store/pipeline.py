"""The upload pipeline: a zip uploaded to the bucket is extracted on the mount, completely, once.

An upload of ``<access point root>/<UPLOAD_PREFIX>/<path>.zip`` reaches the unzip function as an
EventBridge "Object Created" event; a request may also name the keys itself (``{"archive",
"destination"}``, destination optional). :func:`parse_request` maps the object key to the key on
the mount (the access point's root directory is the object key's prefix) and derives the
destination, ``<EXTRACT_PREFIX>/<path>`` (the path below UPLOAD_PREFIX without ``.zip``).

Exactly once. After the last member is committed, the manifest is committed atomically at
``<destination>.manifest.json``, a sibling of the destination (never inside it, where a member
could overwrite it, and never hidden, so it is exported to S3 like the members): the archive key,
its S3 version id and ETag (from the event), its sha256 and size, and every member with its size
and sha256. :func:`run` answers "already extracted" without writing when the manifest is there for
the same archive version: the same version id for an event, the same sha256 when the request or the
manifest has none (a request naming keys: the archive is then read once to hash it). Any other
version is extracted again, every member replaced atomically, and its manifest replaces the old one.
A crash at any instant leaves complete members and no manifest for that version, so the retry
extracts the whole archive again.

The import lag. S3 Files imports an object created in the bucket through S3 Event Notifications:
"typically within seconds, sometimes a minute or longer" (see :data:`IMPORT_LAG`). The event that
invokes the function races that import; until the archive is on the mount (at the key, with the
event's size) :func:`run` raises :class:`NotFoundError` saying what it waits for, Lambda retries
the event (1 then 2 minutes later) and finally puts it in the dead-letter queue with that message.

Example:
    >>> request = parse_request(event, get_config())
    >>> run(request, get_config(), context.get_remaining_time_in_millis).answer()
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from s3files_store import mount, tree
from s3files_store.archive import extract_zip
from s3files_store.commit import commit
from s3files_store.exceptions import DeadlineError, InvalidRequestError, NotFoundError, StorageError
from s3files_store.keys import validate_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from s3files_store.archive import Extraction
    from s3files_store.config import Config

ARCHIVE_SUFFIX = ".zip"
MANIFEST_SUFFIX = ".manifest.json"
# Where the import delay is documented: the function quotes it when it gives up waiting.
IMPORT_LAG = (
    "S3 Files imports objects created in the bucket through S3 Event Notifications "
    "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-files-synchronization.html), which are "
    "delivered typically within seconds, sometimes a minute or longer "
    "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html)"
)
# The archive is hashed in reads this large (S3 Files bills each read as >= 32 KiB; direct reads
# serve reads >= 1 MiB straight from S3).
_HASH_READ_BYTES = 4 * 1024 * 1024
# Bytes a manifest may take per member (a key of up to 1,024 characters and two numbers), so a
# planted huge file is never read whole.
_MANIFEST_BYTES_PER_MEMBER = 1200


@dataclass(frozen=True, slots=True)
class Request:
    """One extraction to do: keys on the mount, and what the event says of the archive's version."""

    archive: str
    destination: str
    source: str  # how to name the archive in messages: its S3 URI for an event, else its key
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    uploaded: datetime | None = None

    @property
    def manifest(self) -> str:
        """The manifest's key: a sibling of the destination."""
        return self.destination + MANIFEST_SUFFIX


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`run` did: ``extracted`` now, or found ``already extracted`` in the manifest."""

    request: Request
    manifest: dict[str, Any]
    extraction: Extraction | None  # None when already extracted

    def answer(self, max_listed: int) -> dict[str, Any]:
        """The function's 200 response, listing at most ``max_listed`` members."""
        members = self.manifest["members"]
        return {
            "statusCode": 200,
            "outcome": "already extracted" if self.extraction is None else "extracted",
            "archive": self.request.archive,
            "destination": self.request.destination,
            "manifest": self.request.manifest,
            "sha256": self.manifest["sha256"],
            "files": len(members),
            "directories": self.manifest["directories"],
            "bytes": sum(member["bytes"] for member in members),
            "members": members[:max_listed],
            "members_truncated": len(members) > max_listed,
        }


def parse_request(event: object, config: Config) -> Request:
    """The :class:`Request` an EventBridge "Object Created" event or an explicit request asks for.

    Raises InvalidRequestError naming what is wrong: another event, another bucket's prefix, a
    key outside UPLOAD_PREFIX or not ending in .zip, a destination the manifest could not sit beside.
    """
    if not isinstance(event, dict):
        raise InvalidRequestError(
            "the event must be a JSON object: an EventBridge 'Object Created' event of the bucket, or "
            "{'archive': KEY, 'destination': KEY} with keys below the mount root"
        )
    if "detail" in event or "detail-type" in event:
        return _from_eventbridge(event, config)
    archive = "/".join(validate_key(event.get("archive"), "archive"))
    destination = event.get("destination")
    if destination is None:
        destination = _derived_destination(archive, config, archive)
    return Request(archive, _destination(destination), source=archive)


def _from_eventbridge(event: dict[str, Any], config: Config) -> Request:
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    obj = detail.get("object")
    if (
        event.get("source") != "aws.s3"
        or event.get("detail-type") != "Object Created"
        or not isinstance(obj, dict)
    ):
        raise InvalidRequestError(
            f"event {event.get('id')!r} is {event.get('source')!r} {event.get('detail-type')!r}: only "
            f"aws.s3 'Object Created' events with detail.object start an extraction. Check the rule's "
            f"event pattern"
        )
    bucket = detail["bucket"].get("name") if isinstance(detail.get("bucket"), dict) else None
    key, size = obj.get("key"), obj.get("size")
    source = f"s3://{bucket}/{key}"
    root = config.access_point_root + "/"
    if not isinstance(key, str) or not key.startswith(root):
        raise InvalidRequestError(
            f"{source} is not below the access point's root directory {root!r} "
            f"(ACCESS_POINT_ROOT_PATH): it is not on this function's mount. Check the rule's key filter"
        )
    archive = "/".join(validate_key(key.removeprefix(root), "object key below the access point root"))
    if not isinstance(size, int) or size < 0:
        raise InvalidRequestError(f"event {event.get('id')!r} gives no object size for {source}")
    return Request(
        archive=archive,
        destination=_derived_destination(archive, config, source),
        source=source,
        version_id=_optional_string(obj.get("version-id")),
        etag=_optional_string(obj.get("etag")),
        size=size,
        uploaded=_timestamp(event.get("time")),
    )


def _derived_destination(archive: str, config: Config, source: str) -> str:
    below = archive.removeprefix(config.upload_prefix + "/")
    if below == archive or not below.endswith(ARCHIVE_SUFFIX):
        raise InvalidRequestError(
            f"{source} is not a '*{ARCHIVE_SUFFIX}' below UPLOAD_PREFIX={config.upload_prefix + '/'!r}, "
            f"so it has no default destination: upload archives there, or name a 'destination'"
        )
    return _destination(f"{config.extract_prefix}/{below.removesuffix(ARCHIVE_SUFFIX)}")


def _destination(value: object) -> str:
    destination = "/".join(validate_key(value, "destination"))
    if destination.endswith(MANIFEST_SUFFIX):
        raise InvalidRequestError(
            f"destination {destination!r} ends in {MANIFEST_SUFFIX!r}, which names the manifest of another "
            f"destination: rename the archive or choose another destination"
        )
    return destination


def _optional_string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def run(request: Request, config: Config, remaining_ms: Callable[[], int]) -> Outcome:
    """Extract ``request`` unless its manifest says this version is already extracted (module docstring).

    Raises NotFoundError while the archive (or this version of it) is not on the mount, and what
    :func:`s3files_store.archive.extract_zip` raises.
    """
    previous = read_manifest(config, request.manifest)
    if previous is not None and request.version_id is not None and _same(previous, request, "version_id"):
        return Outcome(request, previous, None)
    seen: dict[str, Any] = {}  # the archive's sha256 and size, as inspect() read them

    def inspect(fd: int, size: int) -> None:
        if request.size is not None and size != request.size:
            raise _NotImported(f"the file there holds {size:,} bytes, not the object's {request.size:,}")
        seen.update(sha256=_sha256(fd, size, request, config, remaining_ms), size=size)
        # Without a version id on both sides, the bytes say whether this is the archive extracted.
        if (
            previous is not None
            and (request.version_id is None or previous.get("version_id") is None)
            and _same(previous, request, "sha256", seen)
        ):
            raise _AlreadyExtracted(previous)

    try:
        extraction = extract_zip(request.archive, request.destination, config, remaining_ms, inspect)
    except _AlreadyExtracted as done:
        return Outcome(request, done.manifest, None)
    except _NotImported as exc:
        raise _not_imported(request, exc.what) from None
    except NotFoundError:
        if request.size is None:
            raise
        raise _not_imported(request, "there is no file there") from None
    manifest = {
        "archive": request.archive,
        "source": request.source,
        "version_id": request.version_id,
        "etag": request.etag,
        "sha256": seen["sha256"],
        "size": seen["size"],
        "destination": request.destination,
        "directories": extraction.directories,
        "members": [{"key": f.key, "bytes": f.bytes, "sha256": f.sha256} for f in extraction.files],
    }
    try:
        commit(config.mount_root, request.manifest, json.dumps(manifest, indent=1).encode() + b"\n")
    except StorageError as exc:
        mount.invalidate()  # the next invoke checks the mount again and names the precise cause
        exc.add_note(f"every member of {request.archive} was extracted; the retry extracts them again")
        raise
    return Outcome(request, manifest, extraction)


class _NotImported(Exception):
    """Another version of the archive is on the mount (``what`` says how it differs): stop before
    anything is written, and wait for the import."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _AlreadyExtracted(Exception):
    """The archive's sha256 is the manifest's: stop before anything is written."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        super().__init__("already extracted")
        self.manifest = manifest


def _same(manifest: dict[str, Any], request: Request, field: str, seen: dict[str, Any] | None = None) -> bool:
    wanted = seen[field] if seen is not None else getattr(request, field)
    return (
        manifest.get("archive") == request.archive
        and manifest.get("destination") == request.destination
        and manifest.get(field) == wanted
    )


def read_manifest(config: Config, key: str) -> dict[str, Any] | None:
    """The manifest at ``key``, or None when there is none or it is unreadable (then the archive is
    extracted again and a good manifest replaces it)."""
    limit = config.archive_max_members * _MANIFEST_BYTES_PER_MEMBER + 64 * 1024
    try:
        fd, size = tree.open_key(config.mount_root, validate_key(key, "manifest"), limit)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"opening manifest {key}") from exc
    try:
        with os.fdopen(fd, "rb") as file:
            manifest = json.loads(file.read(size + 1))
    except (OSError, ValueError):
        return None
    return manifest if _valid(manifest) else None


def _valid(manifest: object) -> bool:
    """Whether ``manifest`` has the shape :func:`run` writes (another client may have written it)."""
    if not isinstance(manifest, dict):
        return False
    members = manifest.get("members")
    return (
        isinstance(manifest.get("sha256"), str)
        and isinstance(manifest.get("directories"), int)
        and isinstance(members, list)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("key"), str)
            and isinstance(m.get("bytes"), int)
            and isinstance(m.get("sha256"), str)
            for m in members
        )
    )


def _sha256(fd: int, size: int, request: Request, config: Config, remaining_ms: Callable[[], int]) -> str:
    digest = hashlib.sha256()
    at = 0
    while at < size:
        if remaining_ms() < config.deadline_margin_ms:
            raise DeadlineError(
                f"hashing {request.source} stopped at byte {at:,} of {size:,}: too little invocation time "
                f"left. Nothing was extracted; raise the function's Timeout (the retry starts over)"
            )
        try:
            chunk = os.pread(fd, min(_HASH_READ_BYTES, size - at), at)
        except OSError as exc:
            raise StorageError.from_os_error(exc, f"reading {request.archive}") from exc
        if not chunk:
            raise _NotImported(f"the file there ended at byte {at:,} while it was read")
        digest.update(chunk)
        at += len(chunk)
    return digest.hexdigest()


def _not_imported(request: Request, what: str) -> NotFoundError:
    """The archive's version is not on the mount yet: raised, so Lambda retries the event."""
    waited = ""
    if request.uploaded is not None:
        seconds = (datetime.now(UTC) - request.uploaded).total_seconds()
        waited = f", {seconds:,.0f} s after its upload at {request.uploaded.isoformat()}"
    version = f"version {request.version_id}, " if request.version_id else ""
    size = f"{request.size:,} bytes" if request.size is not None else "size unknown"
    return NotFoundError(
        f"{request.source} ({version}{size}) is not on the file system at "
        f"{request.archive!r} yet{waited}: {what}. Waiting for S3 Files to import it: {IMPORT_LAG}. "
        f"Lambda retries this event twice (1 then 2 minutes later), then puts it in the dead-letter "
        f"queue; there, check that the object still exists with this version and that the file "
        f"system is available, then redrive the message"
    )
