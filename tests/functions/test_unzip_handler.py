"""The unzip handler end to end on a real directory: the response, its size cap, metrics, which
refusals are answered (the event or the archive is at fault) and which are raised for a retry."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import zipfile
from typing import TYPE_CHECKING, Any

import pytest
from testkit import REPO, write_zip

from s3files_store.exceptions import DeadlineError, NotFoundError, UnsafePathError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext

EVENT = json.loads((REPO / "events" / "unzip.json").read_text())
MEMBERS = [("readme.txt", b"hello"), ("data/", b""), ("data/2026.csv", b"a,b\n1,2\n")]


@pytest.fixture
def archive(root: Path) -> Path:
    """The archive the sample event names, with a few members."""
    return write_zip(root / EVENT["archive"], MEMBERS)


def metrics_of(lines: list[str]) -> dict[str, Any]:
    (blob,) = [blob for blob in map(json.loads, lines) if "_aws" in blob]
    return blob


def test_the_sample_event_extracts_every_member(
    unzip: ModuleType, root: Path, archive: Path, context: FakeContext, stdout_lines: Callable[[], list[str]]
) -> None:
    response = unzip.handler(EVENT, context)
    destination = EVENT["destination"]
    assert response == {
        "statusCode": 200,
        "outcome": "extracted",
        "archive": EVENT["archive"],
        "destination": destination,
        "manifest": f"{destination}.manifest.json",
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "files": 2,
        "directories": 1,
        "bytes": 5 + 8,
        "members": [
            {"key": f"{destination}/{name}", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in MEMBERS
            if not name.endswith("/")
        ],
        "members_truncated": False,
    }
    assert (root / destination / "data" / "2026.csv").read_bytes() == b"a,b\n1,2\n"
    blob = metrics_of(stdout_lines())
    assert (blob["ExtractedFiles"], blob["ExtractedBytes"]) == ([2.0], [13.0])


def test_the_member_list_is_capped(
    unzip: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unzip, "MAX_LISTED_MEMBERS", 3)
    write_zip(root / EVENT["archive"], [(f"f{n}.txt", b"x") for n in range(5)])
    response = unzip.handler(EVENT, context)
    assert (response["files"], len(response["members"]), response["members_truncated"]) == (5, 3, True)


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ([("../../escape.txt", b"x")], 400),
        ([("ok.txt", b"x"), ("/etc/passwd", b"x")], 400),
        ([("bomb.bin", bytes(32 * 1024 * 1024))], 413),
    ],
    ids=["zip-slip", "absolute", "bomb"],
)
def test_hostile_archives_are_answered_and_write_nothing(
    unzip: ModuleType,
    root: Path,
    context: FakeContext,
    stdout_lines: Callable[[], list[str]],
    members: list[tuple[str, bytes]],
    status: int,
) -> None:
    write_zip(root / EVENT["archive"], members)
    response = unzip.handler(EVENT, context)
    assert response["statusCode"] == status
    assert "nothing was extracted" in response["error"].lower()
    assert not (root / "extracted").exists()
    assert not (root.parent / "escape.txt").exists()
    assert metrics_of(stdout_lines())["RejectedRequests"] == [1.0]


def spoil(path: Path, how: str) -> None:
    """Make the archive at `path` hostile or broken in place."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    at = data.rindex(b"PK\x01\x02")  # the last member's central directory entry
    local_at = struct.unpack_from("<L", data, at + 42)[0]
    if how == "strong-encryption":
        for flags_at in (at + 8, local_at + 6):
            struct.pack_into("<H", data, flags_at, struct.unpack_from("<H", data, flags_at)[0] | 0x40)
    else:  # "corrupt": one byte of the last member's stored data flipped (its CRC-32 then fails)
        data[local_at + 30 + struct.unpack_from("<H", data, local_at + 26)[0] + 10] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "status", "advice", "written"),
    [
        ("small-bombs", 413, "Send data this compressible in archives that inflate to at most", False),
        ("strong-encryption", 400, "Re-create the archive without encryption", False),
        ("truncated", 400, "upload the complete archive again", False),
        ("corrupt", 400, "Re-create the archive and upload it complete", True),
    ],
    ids=["small-bombs", "strong-encryption", "truncated", "corrupt"],
)
def test_refusals_of_the_archive_say_to_fix_it_never_to_retry(
    unzip: ModuleType,
    root: Path,
    context: FakeContext,
    stdout_lines: Callable[[], list[str]],
    how: str,
    status: int,
    advice: str,
    written: bool,
) -> None:
    """A good first member, then the fault: 40 members of 1 MiB of zeros (each within the member
    rule), a later member with flag bit 6, the archive cut in half, a later member's data flipped
    (found only while inflating: the first member stays)."""
    path = root / EVENT["archive"]
    if how == "small-bombs":
        write_zip(path, [("first.txt", b"fine"), *[(f"zeros-{n}.bin", bytes(1 << 20)) for n in range(40)]])
    else:
        write_zip(
            path,
            [("first.txt", b"fine"), ("later.bin", random.Random(7).randbytes(100_000))],
            zipfile.ZIP_STORED,
        )
        spoil(path, how)
    response = unzip.handler(EVENT, context)
    assert response["statusCode"] == status
    error = response["error"]
    assert EVENT["archive"] in error and "()" not in error
    assert "run again" not in error and "retry" not in error.lower()
    assert advice in error
    first = root / EVENT["destination"] / "first.txt"
    assert first.exists() == written
    assert not list((root / "extracted").rglob("*.bin"))
    assert not list(root.glob(".staging/*"))
    assert metrics_of(stdout_lines())["RejectedRequests"] == [1.0]


def test_a_destination_in_the_document_prefix_is_400(
    unzip: ModuleType, root: Path, archive: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCUMENT_PREFIX", "docs/v1")
    response = unzip.handler({**EVENT, "destination": "docs/v1/imports"}, context)
    assert response["statusCode"] == 400
    assert "DOCUMENT_PREFIX='docs/v1'" in response["error"]
    assert not (root / "docs").exists()


@pytest.mark.parametrize(
    "event",
    [[1, 2], {}, {"archive": "elsewhere/x.zip"}, {"archive": "../x.zip", "destination": "a"}],
    ids=["not-an-object", "empty", "no-destination-outside-uploads", "traversal"],
)
def test_bad_events_are_400(unzip: ModuleType, root: Path, context: FakeContext, event: Any) -> None:
    response = unzip.handler(event, context)
    assert response["statusCode"] == 400 and response["error"]


def test_a_missing_archive_raises_for_a_retry(
    unzip: ModuleType, root: Path, context: FakeContext, stdout_lines: Callable[[], list[str]]
) -> None:
    """An object just uploaded may not be on the mount yet: raising lets Lambda retry the event."""
    with pytest.raises(NotFoundError, match="no archive at"):
        unzip.handler(EVENT, context)
    assert metrics_of(stdout_lines())["ExtractFailures"] == [1.0]


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_archive_that_is_not_a_regular_file_raises(
    unzip: ModuleType, root: Path, tmp_path: Path, context: FakeContext, kind: str
) -> None:
    path = root / EVENT["archive"]
    path.parent.mkdir(parents=True)
    if kind == "symlink":
        path.symlink_to(write_zip(tmp_path / "outside.zip", MEMBERS))
    else:
        os.mkfifo(path)
    with pytest.raises(UnsafePathError, match="never"):
        unzip.handler(EVENT, context)
    assert not (root / "extracted").exists()


def test_too_little_time_raises_and_writes_nothing(
    unzip: ModuleType, root: Path, archive: Path, context: FakeContext
) -> None:
    context.remaining_ms = 1000  # below DEADLINE_MARGIN_MS (3000): met while the archive is hashed
    with pytest.raises(DeadlineError, match="Timeout") as caught:
        unzip.handler(EVENT, context)
    assert "stopped at byte 0" in str(caught.value) and "Nothing was extracted" in str(caught.value)
    assert not (root / "extracted").exists()
    assert not (root / ".staging").exists()


UPLOAD = json.loads((REPO / "events" / "unzip-upload.json").read_text())
SAMPLE_ARCHIVE = REPO / "events" / "mount" / "unzip" / EVENT["archive"]


def test_the_upload_event_waits_for_the_import_then_extracts_once(
    unzip: ModuleType, root: Path, context: FakeContext
) -> None:
    # Before the import: raised as NotFoundError itself (Lambda's errorType), naming the object.
    with pytest.raises(NotFoundError, match="is not on the file system") as caught:
        unzip.handler(UPLOAD, context)
    assert type(caught.value).__name__ == "NotFoundError"
    assert "s3://s3files-lambda-databucket-example/lambda/uploads/2026/12/01/data.zip" in str(caught.value)
    # The committed sample archive is the object the event describes (size and single-part ETag).
    data = SAMPLE_ARCHIVE.read_bytes()
    assert UPLOAD["detail"]["object"]["size"] == len(data)
    assert UPLOAD["detail"]["object"]["etag"] == hashlib.md5(data).hexdigest()
    (root / EVENT["archive"]).parent.mkdir(parents=True)
    (root / EVENT["archive"]).write_bytes(data)  # the import
    first = unzip.handler(UPLOAD, context)
    assert (first["statusCode"], first["outcome"], first["destination"]) == (
        200,
        "extracted",
        EVENT["destination"],
    )
    assert (
        root / EVENT["destination"] / "tables" / "orders.csv"
    ).read_bytes() == b"id,total\n1,9.5\n2,12.0\n"
    again = unzip.handler(UPLOAD, context)
    assert again == {**first, "outcome": "already extracted"}
    assert unzip.handler(EVENT, context)["outcome"] == "already extracted"
