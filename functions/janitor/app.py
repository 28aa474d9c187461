"""Janitor: remove orphan staging files (commits that crashed before their rename).

Event (a schedule event works as is): optional ``older_than_seconds`` (integer > 0; default
STAGING_MAX_AGE_SECONDS). At most JANITOR_MAX_DELETIONS files are removed per run.
Response: ``{"statusCode": 200, "removed", "kept", "errors", "truncated"}``; 400 for a bad
``older_than_seconds``; mount and storage failures raise (metric SweepFailures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store.config import get_config
from s3files_store.exceptions import StoreError
from s3files_store.janitor import sweep
from s3files_store.mount import check_mount
from s3files_store.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = get_config()
    older_than = event.get("older_than_seconds") if isinstance(event, dict) else None
    if older_than is None:
        older_than = config.staging_max_age_seconds
    elif isinstance(older_than, bool) or not isinstance(older_than, int) or older_than <= 0:
        error = f"older_than_seconds must be an integer > 0; got {older_than!r}"
        logger.warning("request refused", extra={"error": error})
        metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
        return {"statusCode": 400, "error": error}
    try:
        check_mount(config, need_write=True)
        result = sweep(config.mount_root, older_than, config.janitor_max_deletions)
    except StoreError:
        metrics.add_metric(name="SweepFailures", unit=MetricUnit.Count, value=1)
        logger.exception("sweep failed")
        raise
    metrics.add_metric(name="StagingFilesRemoved", unit=MetricUnit.Count, value=result.removed)
    logger.info(
        "sweep finished",
        extra={
            "removed": result.removed,
            "kept": result.kept,
            "errors": result.errors,
            "truncated": result.truncated,
        },
    )
    return {
        "statusCode": 200,
        "removed": result.removed,
        "kept": result.kept,
        "errors": result.errors,
        "truncated": result.truncated,
    }
