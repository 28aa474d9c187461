from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3files_store.exceptions import InvalidRequestError
from s3files_store.keys import document_key, is_key_segment, validate_id, validate_key


@pytest.mark.parametrize("value", ["a", "A1", "order-42", "x_y.z", "9", "a" * 128, "v1.2-rc_3", "a.", "a-"])
def test_valid_ids(value: str) -> None:
    assert validate_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * 129,
        ".hidden",
        "-dash",
        "_under",
        "..",
        "a..b",
        "a/b",
        "../etc",
        "a\\b",
        "a\x00b",
        "a b",
        "a\n",
        "café",
        "١٢٣",  # Arabic-Indic digits: not ASCII
        "\uff41",  # fullwidth letter a
    ],
)
def test_invalid_ids(value: str) -> None:
    with pytest.raises(InvalidRequestError, match="A-Z a-z 0-9"):
        validate_id(value)


@pytest.mark.parametrize("value", [42, 1.5, None, True, ["a"], {"a": 1}, b"abc"])
def test_non_string_ids(value: object) -> None:
    with pytest.raises(InvalidRequestError, match=f"must be a string; got {type(value).__name__}") as caught:
        validate_id(value, "orderId")
    assert caught.value.status_code == 400
    assert "orderId" in str(caught.value)


def test_document_key_uses_utc_date() -> None:
    assert (
        document_key("documents", "a1", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
        == "documents/2026/01/02/a1.json"
    )


def test_document_key_with_nested_prefix() -> None:
    when = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert document_key("tenant/docs", "x", when) == "tenant/docs/2026/12/31/x.json"


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "/etc/passwd",
        "a/../../x",
        "a/./b",
        "a//b",
        "a/",
        "",
        "a\x00b",
        "a\\..\\b",
        ".staging/x.tmp",
        "documents/.staging/x",
        ".s3files-lost+found-fs-1/x",
        "%2e%2e/x",
        "..%2fx",
        "%2Fetc%2Fpasswd",
        "a/" + "b" * 256,
        "a/" * 600 + "b",
    ],
)
def test_hostile_keys(key: str) -> None:
    with pytest.raises(InvalidRequestError):
        validate_key(key)


@pytest.mark.parametrize("key", [None, 3, ["a"], {"k": "v"}])
def test_non_string_keys(key: object) -> None:
    with pytest.raises(InvalidRequestError, match="must be a string"):
        validate_key(key)


def test_valid_key_splits_into_segments() -> None:
    assert validate_key("documents/2026/11/27/a..json") == ("documents", "2026", "11", "27", "a..json")


def test_bad_key_message_names_the_rules_once_escaped() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_key("a\\b")
    message = str(caught.value)
    # One repr of the key, and the rules in words: no doubled escaping of a literal backslash.
    assert "no backslash" in message
    assert message.count("\\") == 2  # only inside repr('a\\b')


@pytest.mark.parametrize(
    ("name", "valid"), [("a.json", True), (".staging", False), ("..", False), ("a b", False)]
)
def test_key_segments(name: str, valid: bool) -> None:
    assert is_key_segment(name) is valid
