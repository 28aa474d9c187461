"""Janitor: remove orphan staging files (commits that crashed before their rename).

Event (a schedule event works as is): a JSON object with an optional ``older_than_seconds``
(default STAGING_MAX_AGE_SECONDS; never below COMMIT_TIMEOUT_SECONDS + 60, the longest a live
commit may own its staging file). At most JANITOR_MAX_DELETIONS files are removed per run.
Response: ``{"statusCode": 200, "removed", "kept", "errors", "truncated"}``; 400 for an event that
is not an object or a bad ``older_than_seconds``; mount and storage failures raise (metric
SweepFailures).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store.config import get_config
from s3files_store.exceptions import InvalidRequestError, StoreError
from s3files_store.janitor import older_than_seconds, sweep
from s3files_store.mount import check_mount
from s3files_store.observability import logger, metrics, refused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = get_config()
    try:
        older_than = older_than_seconds(event, config.staging_max_age_seconds, config.min_staging_age_seconds)
    except InvalidRequestError as exc:
        return refused(exc)
    try:
        check_mount(config, need_write=True)
        result = sweep(config.mount_root, older_than, config.janitor_max_deletions)
    except StoreError:
        metrics.add_metric(name="SweepFailures", unit=MetricUnit.Count, value=1)
        logger.exception("sweep failed")
        raise
    metrics.add_metric(name="StagingFilesRemoved", unit=MetricUnit.Count, value=result.removed)
    counts = asdict(result)
    logger.info("sweep finished", extra=counts)
    return {"statusCode": 200, **counts}
