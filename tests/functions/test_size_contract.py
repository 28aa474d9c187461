"""The size contract between writer and reader, measured on the real runtime's encoding.

Every document the writer answers 200 for comes back through the reader in a response that
awslambdaric's marshaller (the one Lambda's python3.13 runtime uses) encodes within Lambda's
6,291,456-byte limit; one element more and the writer answers 413 instead of storing it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

from s3files_store.documents import RESPONSE_LIMIT_BYTES

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext


@pytest.fixture
def marshal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Bytes of a response as Lambda's python3.13 runtime sends it (non-ASCII as UTF-8)."""
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.13")
    marshaller = LambdaMarshaller()
    return lambda response: len(marshaller.marshal_response(response)[0].encode())


def largest_accepted(writer: ModuleType, context: FakeContext, event_of: Any) -> int:
    """The largest n for which the writer answers 200 to event_of(n) (413 above it)."""
    low, high = 1, 8_000_000
    while low < high:
        middle = (low + high + 1) // 2
        status = writer.handler(event_of(middle), context)["statusCode"]
        assert status in (200, 413)
        low, high = (middle, high) if status == 200 else (low, middle - 1)
    return low


@pytest.mark.parametrize(
    "event_of",
    [
        # Many tiny elements: compact 2 bytes each, 3 once the runtime adds ", ".
        lambda n: {"id": "dense", "v": [0] * n},
        # Separators inside strings: the fast bound overestimates, the exact measure decides.
        lambda n: {"id": "commas", "v": ",:" * n},
        # Non-ASCII: the runtime sends UTF-8, as stored.
        lambda n: {"id": "accents", "v": "é☕" * n},
    ],
    ids=["dense", "separators-in-strings", "non-ascii"],
)
def test_what_the_writer_accepts_the_reader_returns(
    writer: ModuleType, reader: ModuleType, root: Path, context: FakeContext, marshal: Any, event_of: Any
) -> None:
    n = largest_accepted(writer, context, event_of)
    stored = writer.handler(event_of(n), context)
    response = reader.handler({"key": stored["key"]}, context)
    assert response["statusCode"] == 200
    assert marshal(response) <= RESPONSE_LIMIT_BYTES
    # One more element and the reader's response could not be sent: the writer refused it.
    bigger = event_of(n + 1)
    refused = writer.handler(bigger, context)
    assert refused["statusCode"] == 413
    assert "6,291,456-byte response limit" in refused["error"]
    assert marshal({"statusCode": 200, "key": stored["key"], "document": bigger}) > RESPONSE_LIMIT_BYTES


def test_the_issue_s_4_2_mb_event_is_refused_up_front(
    writer: ModuleType, root: Path, context: FakeContext, marshal: Any
) -> None:
    event = {"id": "big", "v": [0] * 2_100_000}
    response = writer.handler(event, context)
    assert response["statusCode"] == 413
    assert not (root / "documents").exists() or not any((root / "documents").rglob("big.json"))
    assert marshal({"statusCode": 200, "key": "documents/2026/11/27/big.json", "document": event}) > (
        RESPONSE_LIMIT_BYTES
    )


def test_stored_document_that_would_not_fit_is_413(
    reader: ModuleType, root: Path, context: FakeContext, marshal: Any
) -> None:
    # Written by someone else: each "1e15," (5 bytes) becomes "1000000000000000.0, " (20 bytes).
    (root / "documents").mkdir()
    (root / "documents" / "numbers.json").write_text("[" + ",".join(["1e15"] * 320_000) + "]")
    response = reader.handler({"key": "documents/numbers.json"}, context)
    assert response["statusCode"] == 413
    assert "response limit" in response["error"]
    document = [1e15] * 320_000
    assert marshal({"statusCode": 200, "key": "documents/numbers.json", "document": document}) > (
        RESPONSE_LIMIT_BYTES
    )


def test_stored_file_larger_than_a_response_is_never_loaded(
    reader: ModuleType, root: Path, context: FakeContext
) -> None:
    (root / "documents").mkdir()
    (root / "documents" / "huge.json").write_bytes(b" " * RESPONSE_LIMIT_BYTES + b"1")
    response = reader.handler({"key": "documents/huge.json"}, context)
    assert response["statusCode"] == 413
    assert "6,291,457 bytes, more than the 6,291,456" in response["error"]


@pytest.mark.parametrize("padding", [0, 1_300_000], ids=["small", "over-1.2-MB"])
@pytest.mark.parametrize(
    "event_of", [lambda key: {"key": key}, lambda key: {"id": "odd"}], ids=["by-key", "by-id"]
)
def test_a_stored_lone_surrogate_is_400_never_a_response_the_runtime_cannot_send(
    reader: ModuleType, root: Path, context: FakeContext, marshal: Any, padding: int, event_of: Any
) -> None:
    key = "documents/2026/11/27/odd.json"
    text = '{"pad": "' + "x" * padding + '", "v": ["ok", "\\ud800"]}'
    (root / key).parent.mkdir(parents=True)
    (root / key).write_text(text)
    # What the reader used to answer: the runtime's marshaller makes text it cannot encode.
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        marshal({"statusCode": 200, "key": key, "document": json.loads(text)})
    response = reader.handler(event_of(key), context)
    assert response["statusCode"] == 400
    assert f"document {key} holds a lone surrogate" in response["error"]
    assert (
        'at $["v"][1]: that text has no UTF-8 form, so it cannot be sent as a Lambda response'
        in (response["error"])
    )
    assert marshal(response) < 1000
