"""CloudFormation custom resource `Custom::S3PrefixList`: the id of the Region's S3 managed prefix list.

CloudFormation cannot look a managed prefix list up (aws-cloudformation/cloudformation-coverage-roadmap#453),
yet the functions' only HTTPS egress rule must name it. template.yaml asks this function, in the
created-VPC mode when `S3PrefixListId` is empty, for the prefix list named by the resource's
`PrefixListName` property (`com.amazonaws.<region>.s3`) and reads `PrefixListId` from its data.

Every request is answered on CloudFormation's pre-signed URL: Create and Update look the id up,
Delete succeeds without a call (nothing was created), and any failure, the event's own shape
included, is FAILED with the reason, so the stack stops with that reason instead of waiting for a
response. The PUT is retried with backoff (bounded, inside the function's 60 s Timeout); if it never
gets through, the invocation fails so that Lambda's asynchronous retries answer again, and the
resource's ServiceTimeout (template.yaml) bounds what is left. It needs only the standard library
and the boto3 of the python3.13 runtime: nothing to package.

Example (what CloudFormation receives):
    {"Status": "SUCCESS", "PhysicalResourceId": "pl-63a5400a", "Data": {"PrefixListId": "pl-63a5400a"}, ...}
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
# CloudFormation refuses responses over 4,096 bytes; the reason is the only unbounded part.
MAX_REASON = 1000
# Bounded so that the response always goes out well inside the function's 60 s timeout.
EC2_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})
# The PUT: 4 attempts of at most 5 s, 1 + 2 + 4 s apart, so 27 s at worst; with EC2's 24 s, inside 60 s.
PUT_TIMEOUT = 5
PUT_DELAYS = (1, 2, 4)
# Replaced by the tests, so that a backoff takes no time.
sleep = time.sleep


@functools.cache
def ec2_client() -> Any:  # no EC2 type stubs in this project's toolchain
    return boto3.client("ec2", config=EC2_CONFIG)


def handler(event: dict[str, Any], context: Any) -> None:
    """Answer one CloudFormation custom resource request (see the module docstring)."""
    request = event.get("RequestType")
    where = f" (log stream {context.log_stream_name})"
    # FAILED until the request succeeds: the answer goes out from `finally`, whatever was raised.
    status, reason, physical_id, data = "FAILED", f"interrupted{where}", context.log_stream_name, {}
    try:
        physical_id = event.get("PhysicalResourceId") or physical_id
        if request in ("Create", "Update"):
            data = {"PrefixListId": prefix_list_id(event["ResourceProperties"]["PrefixListName"])}
            physical_id = data["PrefixListId"]
        elif request != "Delete":
            raise ValueError(f"unknown RequestType {request!r}: expected Create, Update or Delete")
        status, reason = "SUCCESS", ""
    except Exception as exc:  # whatever went wrong, CloudFormation must hear it now
        LOGGER.exception("%s of %s failed", request, event.get("LogicalResourceId"))
        data, reason = {}, f"{type(exc).__name__}: {exc}"[: MAX_REASON - len(where)] + where
    finally:
        respond(event, status, reason, physical_id, data)


def prefix_list_id(name: str) -> str:
    """The id of the managed prefix list called ``name`` in this Region."""
    found = ec2_client().describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [name]}]
    )["PrefixLists"]
    if len(found) != 1:
        raise LookupError(
            f"expected one managed prefix list named {name} in this Region, found {len(found)}: "
            f"set the stack parameter S3PrefixListId (aws ec2 describe-managed-prefix-lists)"
        )
    return str(found[0]["PrefixListId"])


def respond(event: dict[str, Any], status: str, reason: str, physical_id: str, data: dict[str, str]) -> None:
    """PUT the response to the pre-signed URL CloudFormation gave (an S3 URL; its signature expects an
    empty Content-Type)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": physical_id,
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    # CloudFormation's URL from the event (S3, https); never logged, since it grants the write.
    url = event["ResponseURL"]
    for delay in (*PUT_DELAYS, None):
        put = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
        try:
            with urllib.request.urlopen(put, timeout=PUT_TIMEOUT) as answer:  # noqa: S310
                LOGGER.info("answered %s with %s (HTTP %s)", event.get("RequestType"), status, answer.status)
                return
        except (urllib.error.URLError, OSError) as exc:  # HTTPError (a 5xx, a 403) is a URLError
            if delay is None:
                LOGGER.error(
                    "could not answer %s after %d attempts: %s",
                    event.get("RequestType"),
                    len(PUT_DELAYS) + 1,
                    exc,
                )
                raise
            LOGGER.warning("answering %s failed (%s); retrying in %s s", event.get("RequestType"), exc, delay)
            sleep(delay)
