"""Hostile ids and keys against the real writer and reader handlers: always 400, and nothing is
created, changed or read outside the mount root (the whole enclosing tree is compared)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from testkit import FakeContext

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"
# The root sits 8 levels below the snapshot, deeper than any traversal below can climb.
DEPTH = ("a", "b", "c", "d", "e", "f", "g", "s3data")

TRAVERSALS = [
    "..",
    ".",
    "../x",
    "../../etc/passwd",
    "../" * 12 + "x",
    "a/../../x",
    "..\\..\\x",
    "a\\b",
    "C:\\Windows\\x",
    "/etc/passwd",
    "/tmp/x",
    "//x",
    "a\x00b",
    "\x00",
    "%2e%2e",
    "%2e%2e%2fx",
    "..%2f..%2fx",
    "%252e%252e",
    "\u2025",  # two dot leader
    "\uff0e\uff0e",  # fullwidth full stops
    "\uff0e\uff0e/x",
    "\u2024\u2024",  # one dot leader, twice
    ".hidden",
    ".staging",
    ".staging/x",
    "x/",
    "x/y",
    "",
    " ",
    "a b",
    "a\nb",
    "-x",
    "a" * 129,
    "a" * 10_000,
]
NON_STRINGS: list[Any] = [1, 1.5, ["a"], {"a": 1}, True, False, None]
# Valid reader keys, not hostile ones: "x/y" and 129 characters are well-formed keys (404), and
# the prefix "" lists the whole root.
READER_KEYS = [key for key in TRAVERSALS if key not in ("", "x/y", "a" * 129)]


def label(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:12]}...<{len(value)} chars>"


@pytest.fixture
def jail(tmp_path: Path, mount_root_at: Callable[[Path], Path]) -> Path:
    """The mount root nested deep inside tmp_path, with a secret file and directory beside it."""
    deep = tmp_path.joinpath(*DEPTH)
    deep.mkdir(parents=True)
    (tmp_path / "secret.json").write_text(json.dumps({"secret": SECRET}))
    (tmp_path / "secret-dir").mkdir()
    (tmp_path / "secret-dir" / "order.json").write_text(json.dumps({"secret": SECRET}))
    return mount_root_at(deep)


def snapshot(top: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(top)): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in top.rglob("*")
    }


@pytest.mark.parametrize("value", TRAVERSALS + NON_STRINGS, ids=label)
def test_writer_refuses_hostile_ids(writer: ModuleType, jail: Path, tmp_path: Path, value: Any) -> None:
    before = snapshot(tmp_path)
    response = writer.handler({"id": value, "body": "x"}, FakeContext())
    assert response["statusCode"] == 400, response
    assert response["error"]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "key",
    [
        *READER_KEYS,
        *NON_STRINGS,
        "../../../../../../../../secret.json",
        "documents/../../../../../../../../../secret.json",
        "documents/%2e%2e/%2e%2e/secret.json",
        "documents/2026/11/27/../../../../x.json",
        "documents//x.json",
        "documents/",
        ".staging/0123.tmp",
        "documents/.staging",
        "a" * 2_000,
    ],
    ids=label,
)
def test_reader_refuses_hostile_keys(reader: ModuleType, jail: Path, tmp_path: Path, key: Any) -> None:
    before = snapshot(tmp_path)
    events = [{"key": key}, {"prefix": key}]
    if key is not None:  # a null cursor means "first page"
        events.append({"prefix": "documents", "cursor": key})
    for event in events:
        response = reader.handler(event, FakeContext())
        assert response["statusCode"] == 400, (event, response)
        assert SECRET not in json.dumps(response)
    assert snapshot(tmp_path) == before


def test_reader_refuses_symlinks_that_leave_the_root(reader: ModuleType, jail: Path, tmp_path: Path) -> None:
    documents = jail / "documents"
    documents.mkdir()
    (documents / "link.json").symlink_to(tmp_path / "secret.json")
    (documents / "linked-dir").symlink_to(tmp_path / "secret-dir", target_is_directory=True)
    (documents / "real.json").write_text('{"ok": true}')
    before = snapshot(tmp_path)
    for event in (
        {"key": "documents/link.json"},
        {"key": "documents/linked-dir/order.json"},
        {"prefix": "documents/linked-dir"},
    ):
        response = reader.handler(event, FakeContext())
        assert response["statusCode"] == 409, (event, response)
        assert "symlink" in response["error"]
        assert SECRET not in json.dumps(response)
    # The listing of the real directory shows the real file and never follows the links.
    listing = reader.handler({"prefix": "documents"}, FakeContext())
    assert listing == {"statusCode": 200, "keys": ["documents/real.json"], "next_cursor": None}
    assert snapshot(tmp_path) == before


def test_writer_refuses_events_that_are_not_objects(writer: ModuleType, jail: Path, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    for event in (["../x"], "../x", 42, None):
        assert writer.handler(event, FakeContext())["statusCode"] == 400
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("limit", [0, -1, 1001, 10**9, "10", 1.5, True, None, [10]], ids=label)
def test_reader_refuses_bad_limits(reader: ModuleType, jail: Path, limit: Any) -> None:
    response = reader.handler({"prefix": "documents", "limit": limit}, FakeContext())
    assert response["statusCode"] == 400, response
