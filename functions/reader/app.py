"""Reader: fetch one committed document, or list keys page by page.

Events and responses:
- ``{"key": "documents/2026/11/27/order-42.json"}`` ->
  ``{"statusCode": 200, "key", "document"}``, 404 when absent, 400 for a hostile key, 409 when a
  symlink, a directory or another non-regular file stands at the key or on its path, or a file
  with more than one hard link, 413 when it would not fit a Lambda response, 400 when it holds text
  a response cannot carry (a lone surrogate). Every 4xx names the entry.
- ``{"id": "order-42"}`` -> the same for the newest document with that id, whatever day it was
  committed (404 when none is found in the newest 366 day directories). Entries planted under the
  prefix (future dates, non-dates, unreadable directories, a non-regular ``<id>.json``) are skipped
  and logged as warnings, never answered.
- ``{"prefix": "documents/2026/11", "limit": 100, "cursor": "<last key>"}`` ->
  ``{"statusCode": 200, "keys": [...], "next_cursor": str | None}``; ``prefix`` defaults to
  DOCUMENT_PREFIX, ``""`` lists the whole root.

Mount and storage failures (including a document that is not valid JSON) raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3files_store.config import get_config
from s3files_store.documents import latest_key, read_document
from s3files_store.exceptions import InvalidRequestError, StoreError
from s3files_store.listing import DEFAULT_LIMIT, list_documents
from s3files_store.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = get_config()
    try:
        if not isinstance(event, dict):
            raise InvalidRequestError("the event must be a JSON object with 'key', 'id' or 'prefix'")
        if "key" in event or "id" in event:
            key = event["key"] if "key" in event else latest_key(event["id"], config)
            return {"statusCode": 200, "key": key, "document": read_document(key, config)}
        keys, next_cursor = list_documents(
            event.get("prefix", config.document_prefix),
            config,
            limit=event.get("limit", DEFAULT_LIMIT),
            cursor=event.get("cursor"),
        )
    except StoreError as exc:
        if exc.status_code >= 500:
            raise
        logger.info("request refused", extra={"status": exc.status_code, "error": str(exc)})
        return {"statusCode": exc.status_code, "error": str(exc)}
    return {"statusCode": 200, "keys": keys, "next_cursor": next_cursor}
