from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.exceptions import StorageError

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext


def test_reads_what_the_writer_committed(
    reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext
) -> None:
    written = writer.handler({"id": "doc-1", "items": [1, 2]}, context)
    response = reader.handler({"key": written["key"]}, context)
    assert response == {
        "statusCode": 200,
        "key": written["key"],
        "document": {"id": "doc-1", "items": [1, 2]},
    }


def test_missing_document_is_404(reader: ModuleType, root: Path, context: FakeContext) -> None:
    response = reader.handler({"key": "documents/2026/11/27/absent.json"}, context)
    assert response["statusCode"] == 404
    assert "absent.json" in response["error"]


@pytest.mark.parametrize("key", ["../secret.json", "/etc/passwd", "a/../../secret.json", ".staging/x.tmp", 5])
def test_hostile_keys_are_400(reader: ModuleType, root: Path, context: FakeContext, key: Any) -> None:
    response = reader.handler({"key": key}, context)
    assert response["statusCode"] == 400
    assert response["error"]


def test_non_object_event_is_400(reader: ModuleType, root: Path, context: FakeContext) -> None:
    assert reader.handler(["key"], context)["statusCode"] == 400


def test_unparsable_document_raises(reader: ModuleType, root: Path, context: FakeContext) -> None:
    (root / "documents").mkdir()
    (root / "documents" / "bad.json").write_text("{not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        reader.handler({"key": "documents/bad.json"}, context)


def test_listing_pages(reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext) -> None:
    keys = sorted(writer.handler({"id": f"doc-{i}"}, context)["key"] for i in range(5))
    first = reader.handler({"prefix": "documents", "limit": 3}, context)
    assert first == {"statusCode": 200, "keys": keys[:3], "next_cursor": keys[2]}
    second = reader.handler({"prefix": "documents", "limit": 3, "cursor": first["next_cursor"]}, context)
    assert second == {"statusCode": 200, "keys": keys[3:], "next_cursor": None}


def test_listing_defaults_to_document_prefix(
    reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext
) -> None:
    key = writer.handler({"id": "only"}, context)["key"]
    (root / "elsewhere.json").write_text("{}")
    assert reader.handler({}, context) == {"statusCode": 200, "keys": [key], "next_cursor": None}


@pytest.mark.parametrize("event", [{"limit": 0}, {"limit": 5000}, {"limit": "3"}, {"cursor": "../x"}])
def test_bad_listing_arguments_are_400(
    reader: ModuleType, root: Path, context: FakeContext, event: dict[str, Any]
) -> None:
    assert reader.handler(event, context)["statusCode"] == 400


def test_reads_the_newest_document_by_id(
    reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext
) -> None:
    written = writer.handler({"id": "order-42", "v": 1}, context)
    response = reader.handler({"id": "order-42"}, context)
    assert response == {"statusCode": 200, "key": written["key"], "document": {"id": "order-42", "v": 1}}
    assert reader.handler({"id": "absent"}, context)["statusCode"] == 404
    assert reader.handler({"id": "../x"}, context)["statusCode"] == 400


def test_a_directory_at_the_key_is_409_naming_it(
    reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext
) -> None:
    key = writer.handler({"id": "doc-1"}, context)["key"]
    (root / key).unlink()
    (root / key).mkdir()
    response = reader.handler({"key": key}, context)
    assert response["statusCode"] == 409
    assert f"{key} on the mount is a directory, not a document" in response["error"]


def test_a_socket_or_a_hard_link_at_the_key_is_409_naming_it(
    reader: ModuleType, root: Path, tmp_path: Path, context: FakeContext
) -> None:
    (root / "documents").mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "documents" / "socket.json"))
    (tmp_path / "outside.json").write_text('{"secret": true}')
    os.link(tmp_path / "outside.json", root / "documents" / "linked.json")
    response = reader.handler({"key": "documents/socket.json"}, context)
    assert response["statusCode"] == 409
    assert "documents/socket.json on the mount is a socket, not a regular file" in response["error"]
    response = reader.handler({"key": "documents/linked.json"}, context)
    assert response["statusCode"] == 409
    assert "documents/linked.json on the mount has 2 hard links" in response["error"]
    assert "secret" not in json.dumps(response)


def test_planted_entries_do_not_hide_the_newest_document_by_id(
    reader: ModuleType, writer: ModuleType, root: Path, context: FakeContext
) -> None:
    written = writer.handler({"id": "order-42", "v": 1}, context)
    (root / "documents" / "2099").write_text("a file named like a future year")
    (root / "documents" / "9999" / "12" / "31").mkdir(parents=True)
    (root / "documents" / "9999" / "12" / "31" / "order-42.json").write_text('{"planted": true}')
    day = datetime.strptime(written["key"].split("/", 1)[1][:10], "%Y/%m/%d").replace(tzinfo=UTC)
    newer = root / "documents" / f"{day + timedelta(days=1):%Y/%m/%d}"  # tomorrow's, from the writer's day
    newer.mkdir(parents=True)
    os.mkfifo(newer / "order-42.json")
    response = reader.handler({"id": "order-42"}, context)
    assert response == {"statusCode": 200, "key": written["key"], "document": {"id": "order-42", "v": 1}}
