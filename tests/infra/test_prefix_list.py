"""infra/prefix_list/app.py, the `Custom::S3PrefixList` handler: EC2 behind botocore's Stubber, and
CloudFormation's pre-signed response URL served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from testkit import REPO, FakeContext, load_module

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

NAME = "com.amazonaws.us-east-1.s3"
PREFIX_LIST = "pl-63a5400a"
QUERY = {"Filters": [{"Name": "prefix-list-name", "Values": [NAME]}]}


class Responses(BaseHTTPRequestHandler):
    """Records each request CloudFormation's S3 URL would receive, and answers 200 like S3 (or 503,
    S3's "slow down", to the first ``failures`` of them)."""

    received: list[dict[str, Any]]
    failures: int = 0

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(503 if len(self.received) <= self.failures else 200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def cloudformation(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A response URL on a real server, and the requests it received; parametrized indirectly with n,
    the server refuses the first n PUTs."""
    received: list[dict[str, Any]] = []
    failures = getattr(request, "param", 0)
    handler = type("Handler", (Responses,), {"received": received, "failures": failures})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cfn-response?X-Amz-Signature=abc", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> Iterator[tuple[ModuleType, Stubber]]:
    module = load_module("prefix_list_app", REPO / "infra" / "prefix_list" / "app.py")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    monkeypatch.setattr(module, "ec2_client", lambda: ec2)
    monkeypatch.setattr(module, "sleep", slept.append)  # the backoff, recorded instead of waited
    with Stubber(ec2) as stubber:
        yield module, stubber
        stubber.assert_no_pending_responses()


def cfn_request(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s3files/0123",
        "RequestId": "5d1a1c34-0000-4000-8000-000000000001",
        "LogicalResourceId": "S3PrefixList",
        "ResourceType": "Custom::S3PrefixList",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "PrefixListName": NAME,
        },
        **extra,
    }


def found(*ids: str) -> dict[str, Any]:
    return {
        "PrefixLists": [{"PrefixListId": i, "PrefixListName": NAME, "AddressFamily": "IPv4"} for i in ids]
    }


def answer(received: list[dict[str, Any]]) -> dict[str, Any]:
    [response] = received
    assert response["path"] == "/cfn-response?X-Amz-Signature=abc"
    assert response["headers"]["Content-Type"] == ""  # what the pre-signed URL's signature expects
    return response["body"]


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_create_and_update_answer_the_prefix_list_id(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]], kind: str
) -> None:
    module, stubber = app
    url, received = cloudformation
    stubber.add_response("describe_managed_prefix_lists", found(PREFIX_LIST), QUERY)
    module.handler(cfn_request(kind, url, PhysicalResourceId=PREFIX_LIST), FakeContext())
    body = answer(received)
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"PrefixListId": PREFIX_LIST}
    assert body["PhysicalResourceId"] == PREFIX_LIST  # unchanged, so an update replaces nothing
    sent = cfn_request(kind, url)
    assert [body[k] for k in ("StackId", "RequestId", "LogicalResourceId")] == [
        sent[k] for k in ("StackId", "RequestId", "LogicalResourceId")
    ]


def test_delete_succeeds_without_calling_ec2(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    module, _ = app  # nothing queued: an EC2 call would fail the request
    url, received = cloudformation
    module.handler(cfn_request("Delete", url, PhysicalResourceId=PREFIX_LIST), FakeContext())
    body = answer(received)
    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", PREFIX_LIST, {})


@pytest.mark.parametrize("lists", [(), ("pl-63a5400a", "pl-0123456789abcdef0")])
def test_no_single_prefix_list_fails_with_the_fix(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]], lists: tuple[str, ...]
) -> None:
    module, stubber = app
    url, received = cloudformation
    stubber.add_response("describe_managed_prefix_lists", found(*lists), QUERY)
    context = FakeContext()
    module.handler(cfn_request("Create", url), context)
    body = answer(received)
    assert body["Status"] == "FAILED"
    assert f"named {NAME} in this Region, found {len(lists)}" in body["Reason"]
    assert "S3PrefixListId" in body["Reason"]
    assert context.log_stream_name in body["Reason"]
    assert body["PhysicalResourceId"] == context.log_stream_name  # a create that failed has no id of its own
    assert body["Data"] == {}


def test_an_ec2_error_fails_with_its_message(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    module, stubber = app
    url, received = cloudformation
    stubber.add_client_error(
        "describe_managed_prefix_lists",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    module.handler(cfn_request("Update", url, PhysicalResourceId=PREFIX_LIST), FakeContext())
    body = answer(received)
    assert body["Status"] == "FAILED"
    assert "UnauthorizedOperation" in body["Reason"]
    assert body["PhysicalResourceId"] == PREFIX_LIST


def test_an_unknown_request_type_fails(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    module, _ = app
    url, received = cloudformation
    module.handler(cfn_request("Replace", url), FakeContext())
    body = answer(received)
    assert body["Status"] == "FAILED"
    assert "unknown RequestType 'Replace'" in body["Reason"]


def test_a_long_reason_stays_within_the_response_limit(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    module, stubber = app
    url, received = cloudformation
    stubber.add_client_error("describe_managed_prefix_lists", "InternalError", "x" * 10_000, 500)
    module.handler(cfn_request("Create", url), FakeContext())
    [response] = received
    assert response["body"]["Status"] == "FAILED"
    assert len(response["body"]["Reason"]) <= module.MAX_REASON
    assert int(response["headers"]["Content-Length"]) < 4096  # CloudFormation's limit for a response


@pytest.mark.parametrize("cloudformation", [2], indirect=True)
def test_a_refused_put_is_retried_with_backoff(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]], slept: list[float]
) -> None:
    module, stubber = app
    url, received = cloudformation
    stubber.add_response("describe_managed_prefix_lists", found(PREFIX_LIST), QUERY)
    module.handler(cfn_request("Create", url), FakeContext())
    assert len(received) == 3  # two 503s, then the answer that got through
    assert received[0]["body"] == received[2]["body"]
    assert received[2]["body"]["Status"] == "SUCCESS"
    assert slept == [1, 2]


@pytest.mark.parametrize("cloudformation", [100], indirect=True)
def test_a_put_that_never_gets_through_fails_the_invocation_after_bounded_tries(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]], slept: list[float]
) -> None:
    # Raising lets Lambda's asynchronous retries answer again; ServiceTimeout bounds the rest.
    module, stubber = app
    url, received = cloudformation
    stubber.add_response("describe_managed_prefix_lists", found(PREFIX_LIST), QUERY)
    with pytest.raises(urllib.error.HTTPError, match="503"):
        module.handler(cfn_request("Create", url), FakeContext())
    assert len(received) == len(module.PUT_DELAYS) + 1
    assert slept == list(module.PUT_DELAYS)


@pytest.mark.parametrize("cloudformation", [1], indirect=True)
def test_an_unexpected_error_is_still_answered_after_a_refused_put(
    app: tuple[ModuleType, Stubber], cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    module, _ = app
    url, received = cloudformation
    event = cfn_request("Create", url)
    del event["ResourceProperties"]  # a malformed event: KeyError inside the lookup
    module.handler(event, FakeContext())
    assert len(received) == 2
    assert received[1]["body"]["Status"] == "FAILED"
    assert "KeyError" in received[1]["body"]["Reason"]


def test_a_server_that_is_not_there_is_retried_then_raises(
    app: tuple[ModuleType, Stubber], slept: list[float]
) -> None:
    module, _ = app
    with socket.socket() as probe:  # a port nothing listens on: connection refused, at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(urllib.error.URLError):
        module.handler(cfn_request("Delete", f"http://127.0.0.1:{port}/cfn-response"), FakeContext())
    assert slept == list(module.PUT_DELAYS)


def test_the_ec2_client_and_the_put_bound_their_time() -> None:
    # Retries and timeouts must leave the response time inside the function's Timeout (60 s).
    module = load_module("prefix_list_app", REPO / "infra" / "prefix_list" / "app.py")
    config = module.ec2_client().meta.config
    attempts = config.retries["total_max_attempts"]
    ec2 = attempts * (config.connect_timeout + config.read_timeout)
    put = (len(module.PUT_DELAYS) + 1) * module.PUT_TIMEOUT + sum(module.PUT_DELAYS)
    assert ec2 + put <= 55
