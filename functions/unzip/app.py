"""Unzip: extract a zip archive that is on the S3 Files mount into a directory of the mount, once.

Events: the EventBridge "Object Created" event of an upload to
``s3://BUCKET/<access point root>/<UPLOAD_PREFIX>/<path>.zip`` (the rule in the template sends only
those), or ``{"archive": "uploads/2026/12/01/data.zip", "destination": "extracted/2026/12/01/data"}``,
keys below the mount root (``destination`` defaults to ``<EXTRACT_PREFIX>/<path>`` for an archive
below UPLOAD_PREFIX). Every member is streamed and committed atomically, then a manifest at
``<destination>.manifest.json`` (s3files_store.pipeline): the same archive version delivered again
is answered without writing anything. A hostile or broken archive (zip-slip paths, symlinks, zip
bombs, encryption or other unsupported flag bits, truncation, too many members or bytes) and a
destination in DOCUMENT_PREFIX (the reader's JSON documents) are refused before anything is written.

Response: ``{"statusCode": 200, "outcome": "extracted" | "already extracted", "archive",
"destination", "manifest", "sha256", "files", "directories", "bytes", "members": [{"key", "bytes",
"sha256"}, ...], "members_truncated"}``, where ``members`` lists the first MAX_LISTED_MEMBERS files
(the response stays far below Lambda's 6 MB); or ``{"statusCode": 400 | 413, "error"}`` when the
event or the archive is at fault and a retry cannot help (the error says what to fix).

Everything else raises, so Lambda retries the event and finally sends it to the dead-letter queue:
NotFoundError (the archive, or this version of it, is not on the mount yet: the message says what
it waits for, S3 Files' import of the upload), UnsafePathError (a symlink or a non-regular file in
the way: the message says what to remove), DeadlineError (raise the Timeout: files extracted so far
are complete, and the retry extracts the whole archive again), MountError and StorageError.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store.config import get_config
from s3files_store.exceptions import InvalidRequestError, StoreError
from s3files_store.observability import logger, metrics, refused
from s3files_store.pipeline import parse_request, run

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# About 150 bytes each: a thousand keep the response near 150 KB.
MAX_LISTED_MEMBERS = 1000


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        config = get_config()
        outcome = run(parse_request(event, config), config, context.get_remaining_time_in_millis)
    except InvalidRequestError as exc:
        return refused(exc)
    except StoreError as exc:
        metrics.add_metric(name="ExtractFailures", unit=MetricUnit.Count, value=1)
        logger.exception(
            "extraction failed",
            extra={"error_kind": type(exc).__name__, "notes": getattr(exc, "__notes__", [])},
        )
        raise
    answer = outcome.answer(MAX_LISTED_MEMBERS)
    if outcome.extraction is None:
        metrics.add_metric(name="AlreadyExtracted", unit=MetricUnit.Count, value=1)
        logger.info("already extracted", extra={"archive": answer["archive"], "sha256": answer["sha256"]})
        return answer
    metrics.add_metric(
        name="ExtractLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    metrics.add_metric(name="ExtractedFiles", unit=MetricUnit.Count, value=answer["files"])
    metrics.add_metric(name="ExtractedBytes", unit=MetricUnit.Bytes, value=answer["bytes"])
    logger.info(
        "extracted", extra={"archive": answer["archive"], "files": answer["files"], "bytes": answer["bytes"]}
    )
    return answer
