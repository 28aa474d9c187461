"""The upload pipeline on a real directory: events mapped to keys on the mount, the import lag
waited out by retries the test drives (the import played between attempts), duplicate deliveries
answered without writing, new versions extracted again."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from testkit import EVENTS, write_zip

from s3files_store.config import Config
from s3files_store.exceptions import InvalidRequestError, NotFoundError
from s3files_store.pipeline import IMPORT_LAG, parse_request, read_manifest, run

if TYPE_CHECKING:
    from pathlib import Path

UPLOAD = json.loads((EVENTS / "unzip-upload.json").read_text())
ARCHIVE = "uploads/2026/12/01/data.zip"
DESTINATION = "extracted/2026/12/01/data"
MANIFEST = f"{DESTINATION}.manifest.json"
MEMBERS = [("readme.txt", b"hello\n"), ("tables/", b""), ("tables/orders.csv", b"id,total\n1,9.5\n")]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A mount root beside tmp_path/bucket, where tests keep what the bucket holds."""
    (tmp_path / "s3data").mkdir()
    return Config(mount_root=tmp_path / "s3data")


def plenty() -> int:
    return 60_000


def upload_event(archive: Path, version: str = "v1", key: str = f"lambda/{ARCHIVE}") -> dict[str, Any]:
    """The sample EventBridge event for the object ``archive`` holds, uploaded as ``version``."""
    event = copy.deepcopy(UPLOAD)
    data = archive.read_bytes()
    event["detail"]["object"] |= {
        "key": key,
        "size": len(data),
        "etag": hashlib.md5(data).hexdigest(),
        "version-id": version,
    }
    return event


def files(root: Path) -> dict[str, bytes]:
    """Every file under the root but .staging, by key."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".staging" not in path.parts
    }


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of every entry under the root: any write changes one."""
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_the_sample_upload_event_maps_to_keys_on_the_mount(config: Config) -> None:
    request = parse_request(UPLOAD, config)
    assert (request.archive, request.destination, request.manifest) == (ARCHIVE, DESTINATION, MANIFEST)
    assert request.source == "s3://s3files-lambda-databucket-example/lambda/uploads/2026/12/01/data.zip"
    assert (request.version_id, request.size) == ("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", 260)
    assert request.uploaded is not None and request.uploaded.isoformat() == "2026-12-01T09:30:00+00:00"


def test_the_root_path_and_prefixes_come_from_the_configuration(tmp_path: Path) -> None:
    config = Config.from_env(
        {
            "MOUNT_ROOT": str(tmp_path),
            "ACCESS_POINT_ROOT_PATH": "/teams/a",
            "UPLOAD_PREFIX": "in/zips/",
            "EXTRACT_PREFIX": "out/",
        }
    )
    event = copy.deepcopy(UPLOAD)
    event["detail"]["object"]["key"] = "teams/a/in/zips/2026/x.y.zip"
    request = parse_request(event, config)
    assert (request.archive, request.destination) == ("in/zips/2026/x.y.zip", "out/2026/x.y")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"detail-type": "Object Deleted"}, "only aws.s3 'Object Created'"),
        ({"source": "aws.events"}, "only aws.s3 'Object Created'"),
        ({"key": "other/uploads/2026/12/01/data.zip"}, "not below the access point's root"),
        ({"key": "lambdax/uploads/data.zip"}, "not below the access point's root"),
        ({"key": "lambda/extracted/data.zip"}, r"not a '\*\.zip' below UPLOAD_PREFIX"),
        ({"key": "lambda/uploads/data.tar"}, r"not a '\*\.zip' below UPLOAD_PREFIX"),
        ({"key": "lambda/uploads/../x.zip"}, "is invalid"),
        ({"key": "lambda/uploads/a%2Fb.zip"}, "is invalid"),
        ({"key": "lambda/uploads/x.manifest.json.zip"}, "names the manifest of another destination"),
        ({"size": None}, "no object size"),
    ],
)
def test_events_that_start_no_extraction_are_refused(
    config: Config, change: dict[str, Any], message: str
) -> None:
    event = copy.deepcopy(UPLOAD)
    for name in ("key", "size"):
        if name in change:
            event["detail"]["object"][name] = change.pop(name)
    event |= change
    with pytest.raises(InvalidRequestError, match=message):
        parse_request(event, config)


def test_an_explicit_request_derives_its_destination_or_takes_the_one_given(config: Config) -> None:
    assert parse_request({"archive": ARCHIVE}, config).destination == DESTINATION
    assert parse_request({"archive": ARCHIVE, "destination": "x/y"}, config).destination == "x/y"
    with pytest.raises(InvalidRequestError, match="no default destination"):
        parse_request({"archive": "elsewhere/data.zip"}, config)


def test_overlapping_prefixes_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="overlap"):
        Config.from_env(
            {"MOUNT_ROOT": str(tmp_path), "UPLOAD_PREFIX": "data/", "EXTRACT_PREFIX": "data/out/"}
        )


def test_the_import_lag_is_waited_out_by_retries_then_the_archive_is_extracted(
    config: Config, tmp_path: Path
) -> None:
    # The upload, as the bucket has it; the mount gets it only when the "import" runs.
    uploaded = write_zip(tmp_path / "bucket" / "data.zip", MEMBERS)
    older = write_zip(tmp_path / "bucket" / "older.zip", [("readme.txt", b"an older version")])
    request = parse_request(upload_event(uploaded), config)
    on_mount = config.mount_root / ARCHIVE

    def place(source: Path) -> None:  # what S3 Files' import does: the object's bytes at its key
        on_mount.parent.mkdir(parents=True, exist_ok=True)
        on_mount.write_bytes(source.read_bytes())

    imports = [
        lambda: None,  # nothing imported yet
        lambda: place(older),  # the previous version is there
        lambda: place(uploaded),  # this version arrives
    ]
    failures = []
    for attempt, play_import in enumerate(imports):  # each attempt is one (re)delivery of the event
        importer = threading.Thread(target=play_import)
        importer.start()
        importer.join()  # the import happens between attempts: no timing involved
        try:
            outcome = run(request, config, plenty)
        except NotFoundError as exc:
            failures.append((attempt, str(exc)))
            assert files(config.mount_root).keys() <= {ARCHIVE}, "nothing is written while waiting"
            continue
        break
    assert [attempt for attempt, _ in failures] == [0, 1]
    for _, message in failures:
        # What was waited for, and where the delay is documented.
        assert "s3://s3files-lambda-databucket-example/lambda/uploads/2026/12/01/data.zip" in message
        assert "version v1" in message and IMPORT_LAG in message and "dead-letter queue" in message
    assert "there is no file there" in failures[0][1]
    assert (
        f"holds {older.stat().st_size:,} bytes, not the object's {uploaded.stat().st_size:,}"
        in failures[1][1]
    )
    assert outcome.extraction is not None
    assert files(config.mount_root) == {
        ARCHIVE: uploaded.read_bytes(),
        f"{DESTINATION}/readme.txt": b"hello\n",
        f"{DESTINATION}/tables/orders.csv": b"id,total\n1,9.5\n",
        MANIFEST: (config.mount_root / MANIFEST).read_bytes(),
    }
    assert read_manifest(config, MANIFEST) == {
        "archive": ARCHIVE,
        "source": request.source,
        "version_id": "v1",
        "etag": hashlib.md5(uploaded.read_bytes()).hexdigest(),
        "sha256": hashlib.sha256(uploaded.read_bytes()).hexdigest(),
        "size": uploaded.stat().st_size,
        "destination": DESTINATION,
        "directories": 1,
        "members": [
            {"key": f"{DESTINATION}/{name}", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in MEMBERS
            if not name.endswith("/")
        ],
    }


def test_a_duplicate_delivery_is_answered_without_writing_or_reading(config: Config) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    request = parse_request(upload_event(archive), config)
    first = run(request, config, plenty)
    before = snapshot(config.mount_root)
    archive.chmod(0)  # a duplicate of the same version never opens the archive
    try:
        again = run(request, config, plenty)
    finally:
        archive.chmod(0o644)
    assert again.extraction is None
    assert again.answer(10) == {**first.answer(10), "outcome": "already extracted"}
    assert snapshot(config.mount_root) == before


def test_an_explicit_request_for_the_same_bytes_is_already_extracted(config: Config) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    run(parse_request(upload_event(archive), config), config, plenty)
    before = snapshot(config.mount_root)
    outcome = run(parse_request({"archive": ARCHIVE}, config), config, plenty)
    assert outcome.answer(10)["outcome"] == "already extracted"
    assert snapshot(config.mount_root) == before


def test_a_new_version_is_extracted_again_and_replaces_the_manifest(config: Config) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    run(parse_request(upload_event(archive), config), config, plenty)
    write_zip(archive, [("readme.txt", b"version two\n"), ("new.txt", b"new\n")])
    outcome = run(parse_request(upload_event(archive, version="v2"), config), config, plenty)
    assert outcome.answer(10)["outcome"] == "extracted"
    destination = config.mount_root / DESTINATION
    assert (destination / "readme.txt").read_bytes() == b"version two\n"
    assert (destination / "new.txt").read_bytes() == b"new\n"
    manifest = read_manifest(config, MANIFEST)
    assert manifest is not None
    assert manifest["version_id"] == "v2"
    assert manifest["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    # Files of the previous version stay; the manifest lists only this version's members.
    assert [m["key"] for m in manifest["members"]] == [f"{DESTINATION}/readme.txt", f"{DESTINATION}/new.txt"]
    assert (destination / "tables" / "orders.csv").exists()


@pytest.mark.parametrize(
    "planted",
    [
        b"{not json",
        b"[1, 2]",
        b'{"members": "none"}',
        b'{"archive": "uploads/2026/12/01/data.zip", "destination": "extracted/2026/12/01/data", '
        b'"version_id": "v1", "sha256": "x", "directories": 0, "members": [{"key": 1}]}',
    ],
)
def test_an_unreadable_manifest_means_extract_again(config: Config, planted: bytes) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    (config.mount_root / MANIFEST).parent.mkdir(parents=True)
    (config.mount_root / MANIFEST).write_bytes(planted)
    outcome = run(parse_request(upload_event(archive), config), config, plenty)
    assert outcome.answer(10)["outcome"] == "extracted"
    assert read_manifest(config, MANIFEST) == outcome.manifest


def test_a_manifest_of_another_archive_is_not_this_one(config: Config) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    run(parse_request({"archive": ARCHIVE}, config), config, plenty)
    other = config.mount_root / "uploads/other.zip"
    other.write_bytes(archive.read_bytes())  # the same bytes, under another key
    outcome = run(
        parse_request({"archive": "uploads/other.zip", "destination": DESTINATION}, config), config, plenty
    )
    assert outcome.answer(10)["outcome"] == "extracted"
    assert outcome.manifest["archive"] == "uploads/other.zip"


def test_an_upload_event_after_an_explicit_request_for_the_same_bytes_is_already_extracted(
    config: Config,
) -> None:
    archive = write_zip(config.mount_root / ARCHIVE, MEMBERS)
    run(parse_request({"archive": ARCHIVE}, config), config, plenty)
    before = snapshot(config.mount_root)
    outcome = run(parse_request(upload_event(archive), config), config, plenty)
    assert outcome.answer(10)["outcome"] == "already extracted"
    assert snapshot(config.mount_root) == before
