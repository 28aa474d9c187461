"""Powertools ``logger`` and ``metrics`` shared by the handlers.

Structured JSON logs (service from POWERTOOLS_SERVICE_NAME) and CloudWatch EMF metrics in the
namespace POWERTOOLS_METRICS_NAMESPACE (default ``S3FilesLambda``). Metric names:
``CommitLatency`` (Milliseconds), ``CommitBytes`` (Bytes), ``CommitFailures`` (Count),
``RejectedRequests`` (Count, 4xx answers), ``StagingFilesRemoved`` and ``SweepFailures`` (Count);
the unzip function's ``ExtractLatency`` (Milliseconds), ``ExtractedFiles`` (Count),
``ExtractedBytes`` (Bytes) and ``ExtractFailures`` (Count).

Example:
    >>> @logger.inject_lambda_context
    ... @metrics.log_metrics
    ... def handler(event, context): ...
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from s3files_store.exceptions import StoreError

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "S3FilesLambda")


def refused(exc: StoreError) -> dict[str, Any]:
    """Log and count a request refused because of the caller (4xx); the response that says why."""
    logger.warning("request refused", extra={"status": exc.status_code, "error": str(exc)})
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    return {"statusCode": exc.status_code, "error": str(exc)}
