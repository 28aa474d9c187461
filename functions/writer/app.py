"""Writer: commit the event as a JSON document on the S3 Files mount, atomically and durably.

Event: any JSON object; ``event[ID_FIELD]`` (default ``id``) names the document, else the request id.
Response: ``{"statusCode": 200, "committed_path", "key", "bytes", "sha256"}``, or
``{"statusCode": 400 | 413, "error"}`` for a bad id or payload, or a document too large for the
reader to hand back (retrying cannot help).

Everything else raises, so Lambda retries the event and finally sends it to the dead-letter queue:
MountError and StorageError (ENOSPC, EROFS, EIO, ESTALE...), UnsafePathError (a symlink planted on
the document's path: the message says what to remove) and DeadlineError. A deadline refusal is not
the caller's fault and nothing was written: answering 400 would silently drop the event, raising
lets the retry run with a fresh timeout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store.config import get_config
from s3files_store.documents import write_document
from s3files_store.exceptions import InvalidRequestError, StoreError
from s3files_store.observability import logger, metrics, refused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = write_document(
            event, context.aws_request_id, context.get_remaining_time_in_millis(), get_config()
        )
    except InvalidRequestError as exc:
        return refused(exc)
    except StoreError as exc:
        metrics.add_metric(name="CommitFailures", unit=MetricUnit.Count, value=1)
        logger.exception(
            "commit failed", extra={"error_kind": type(exc).__name__, "errno": getattr(exc, "errno", None)}
        )
        raise
    metrics.add_metric(
        name="CommitLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    metrics.add_metric(name="CommitBytes", unit=MetricUnit.Bytes, value=result.bytes)
    logger.info("committed", extra={"key": result.key, "bytes": result.bytes, "sha256": result.sha256})
    return {
        "statusCode": 200,
        "committed_path": result.path,
        "key": result.key,
        "bytes": result.bytes,
        "sha256": result.sha256,
    }
