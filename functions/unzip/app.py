"""Unzip: extract a zip archive that is on the S3 Files mount into a directory of the mount.

Event: ``{"archive": "uploads/2026/12/01/data.zip", "destination": "extracted/data"}``, two keys
below the mount root. Every member is streamed and committed atomically: it appears complete or
not at all, whatever its size. A hostile or broken archive (zip-slip paths, symlinks, zip bombs,
encryption or other unsupported flag bits, truncation, too many members or bytes) and a destination
in DOCUMENT_PREFIX (the reader's JSON documents) are refused before anything is written.

Response: ``{"statusCode": 200, "archive", "destination", "files", "directories", "bytes",
"members": [{"key", "bytes", "sha256"}, ...], "members_truncated"}``, where ``members`` lists the
first MAX_LISTED_MEMBERS files (the response stays far below Lambda's 6 MB); or
``{"statusCode": 400 | 413, "error"}`` when the event or the archive is at fault and a retry
cannot help (the error says what to fix).

Everything else raises, so Lambda retries the event and finally sends it to the dead-letter queue:
NotFoundError (no archive at that key yet: an object uploaded to the bucket reaches the mount
shortly after), UnsafePathError (a symlink or a non-regular file in the way: the message says what
to remove), DeadlineError (raise the Timeout: files extracted so far are complete, and the retry
extracts the whole archive again), MountError and StorageError.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store.archive import extract_zip
from s3files_store.config import get_config
from s3files_store.exceptions import InvalidRequestError, StoreError
from s3files_store.observability import logger, metrics, refused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# About 150 bytes each: a thousand keep the response near 150 KB.
MAX_LISTED_MEMBERS = 1000


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        if not isinstance(event, dict):
            raise InvalidRequestError("the event must be a JSON object with 'archive' and 'destination' keys")
        extraction = extract_zip(
            event.get("archive"), event.get("destination"), get_config(), context.get_remaining_time_in_millis
        )
    except InvalidRequestError as exc:
        return refused(exc)
    except StoreError as exc:
        metrics.add_metric(name="ExtractFailures", unit=MetricUnit.Count, value=1)
        logger.exception(
            "extraction failed",
            extra={"error_kind": type(exc).__name__, "notes": getattr(exc, "__notes__", [])},
        )
        raise
    metrics.add_metric(
        name="ExtractLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    metrics.add_metric(name="ExtractedFiles", unit=MetricUnit.Count, value=len(extraction.files))
    metrics.add_metric(name="ExtractedBytes", unit=MetricUnit.Bytes, value=extraction.bytes)
    logger.info(
        "extracted",
        extra={"archive": extraction.archive, "files": len(extraction.files), "bytes": extraction.bytes},
    )
    return {
        "statusCode": 200,
        "archive": extraction.archive,
        "destination": extraction.destination,
        "files": len(extraction.files),
        "directories": extraction.directories,
        "bytes": extraction.bytes,
        "members": [
            {"key": result.key, "bytes": result.bytes, "sha256": result.sha256}
            for result in extraction.files[:MAX_LISTED_MEMBERS]
        ],
        "members_truncated": len(extraction.files) > MAX_LISTED_MEMBERS,
    }
