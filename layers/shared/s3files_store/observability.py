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

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "S3FilesLambda")
