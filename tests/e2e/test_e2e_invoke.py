"""Every sample event in events/, run end to end: built function, RIE, awslambdaric, real files.

Each test uses its own mount root, so the tests are independent of each other and of ./.local.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from template_functions import function_of_event, functions
from testkit import FUNCTION_IDS, check_answer, sample_answers, write_zip

if TYPE_CHECKING:
    from types import ModuleType

    from testkit import SampleAnswer

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
KEY = re.compile(r"documents/(\d{4})/(\d{2})/(\d{2})/([A-Za-z0-9][A-Za-z0-9._-]*)\.json")
SCRIPT = REPO / "scripts" / "local_invoke.py"
ANSWERS = sample_answers()


@pytest.fixture
def invoke(local_invoke: ModuleType, build_dir: Path, mount_root: Path) -> Any:
    """invoke(function, event) against the session build and this test's mount root."""

    def run(function: str, event: Any) -> Any:
        return local_invoke.invoke(function, event, build_dir=build_dir, mount_root=mount_root)

    return run


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_committed(result: Any, event: dict, mount_root: Path) -> Path:
    """The writer answered 200 and the file it names holds exactly the event, inside the root."""
    assert result.ok, (result.payload, result.logs)
    body = result.payload
    assert body["statusCode"] == 200
    path = Path(body["committed_path"])
    assert path.is_relative_to(mount_root.resolve()), path
    assert path.relative_to(mount_root.resolve()).as_posix() == body["key"]
    assert KEY.fullmatch(body["key"]), body["key"]
    data = path.read_bytes()
    assert json.loads(data) == event
    assert body["bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    return path


def test_writer_without_id_names_the_document_after_the_request(invoke: Any, mount_root: Path) -> None:
    event = load_event("writer.json")
    assert "id" not in event
    result = invoke("writer", event)
    path = assert_committed(result, event, mount_root)
    # The RIE's request id names the document: a UUID, different on every invoke.
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json", path.name)
    assert files_under(mount_root) == [path]


def test_writer_with_id_commits_under_todays_partition(invoke: Any, mount_root: Path) -> None:
    event = load_event("writer-with-id.json")
    before = time.gmtime()
    result = invoke("writer", event)
    after = time.gmtime()
    path = assert_committed(result, event, mount_root)
    match = KEY.fullmatch(result.payload["key"])
    assert match, result.payload["key"]
    year, month, day, name = match.groups()
    assert name == event["id"]
    assert (int(year), int(month), int(day)) in {before[:3], after[:3]}
    assert files_under(mount_root) == [path]


def test_writer_invalid_id_is_refused_and_writes_nothing(invoke: Any, mount_root: Path) -> None:
    result = invoke("writer", load_event("writer-invalid-id.json"))
    assert not result.ok
    assert result.function_error is None
    assert result.payload["statusCode"] == 400
    assert "id" in result.payload["error"]
    assert files_under(mount_root) == []
    assert not (mount_root.parent / "etc").exists()


def test_writer_large_event_round_trips(invoke: Any, mount_root: Path) -> None:
    event = load_event("writer-large.json")
    assert 240_000 < (EVENTS / "writer-large.json").stat().st_size < 256 * 1024
    path = assert_committed(invoke("writer", event), event, mount_root)
    assert path.stat().st_size > 200_000


def test_reader_get_reads_what_the_writer_committed_on_any_day(invoke: Any, mount_root: Path) -> None:
    written = load_event("writer-with-id.json")
    key = invoke("writer", written).payload["key"]
    sample = load_event("reader-get.json")
    assert sample == {"id": written["id"]}
    result = invoke("reader", sample)
    assert result.ok, (result.payload, result.logs)
    assert result.payload == {"statusCode": 200, "key": key, "document": written}


def test_reader_get_of_a_missing_key_is_404(invoke: Any) -> None:
    result = invoke("reader", load_event("reader-get.json"))
    assert result.payload["statusCode"] == 404
    assert not result.ok


@pytest.mark.parametrize("event_file", ["reader-list.json", "reader.json"])
def test_reader_list_returns_the_committed_keys(invoke: Any, event_file: str) -> None:
    keys = sorted(
        invoke("writer", load_event(name)).payload["key"] for name in ("writer.json", "writer-with-id.json")
    )
    result = invoke("reader", load_event(event_file))
    assert result.ok, (result.payload, result.logs)
    assert result.payload == {"statusCode": 200, "keys": keys, "next_cursor": None}


def test_janitor_schedule_event_removes_only_old_staging_files(invoke: Any, mount_root: Path) -> None:
    event = load_event("janitor.json")
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    staging = mount_root / ".staging"
    staging.mkdir(parents=True)
    old, fresh = staging / "0123abcd.tmp", staging / "4567ef01.tmp"
    old.write_bytes(b"{half a docu")
    fresh.write_bytes(b"{in flight")
    # Older than STAGING_MAX_AGE_SECONDS (960 s in the template and env.json).
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    result = invoke("janitor", event)
    assert result.ok, (result.payload, result.logs)
    assert result.payload == {"statusCode": 200, "removed": 1, "kept": 1, "errors": 0, "truncated": False}
    assert not old.exists()
    assert fresh.exists()


def test_unzip_extracts_the_archive_its_sample_event_names(invoke: Any, mount_root: Path) -> None:
    event = load_event("unzip.json")
    members = [("readme.txt", b"hello"), ("tables/orders.csv", b"id,total\n1,9.5\n")]
    write_zip(mount_root / event["archive"], members)
    result = invoke("unzip", event)
    assert result.ok, (result.payload, result.logs)
    assert result.payload["files"] == 2 and result.payload["bytes"] == 5 + 15
    for name, data in members:
        assert (mount_root / event["destination"] / name).read_bytes() == data
    assert list((mount_root / ".staging").iterdir()) == []
    # The same event against an archive that is not there: raised (retried by Lambda), not answered.
    (mount_root / event["archive"]).unlink()
    missing = invoke("unzip", event)
    assert missing.function_error and missing.payload["errorType"] == "NotFoundError"


def test_every_sample_event_has_its_promise_in_events_readme() -> None:
    # Each sample event (its file named for its function) has one line in events/README.md's table,
    # which the test below and the sam local tier hold every function's answers to.
    promised = sorted((answer.event, answer.function) for answer in ANSWERS)
    events = [path for path in EVENTS.glob("*.json") if path.name != "env.json"]
    assert promised == sorted((path.name, function_of_event(path, functions())) for path in events)


@pytest.mark.parametrize("answer", ANSWERS, ids=[answer.event for answer in ANSWERS])
def test_each_sample_event_answers_what_events_readme_promises(invoke: Any, answer: SampleAnswer) -> None:
    # On a fresh mount root, like `sam local invoke`'s fresh container: the same last column.
    result = invoke(answer.function, load_event(answer.event))
    check_answer(answer, result.payload)


def test_env_file_declares_only_variables_the_template_declares(
    local_invoke: ModuleType, build_dir: Path
) -> None:
    # sam local invoke silently ignores env.json variables the template does not declare.
    env = load_event("env.json")
    # A function without a section takes the template's own values (POWERTOOLS_SERVICE_NAME...).
    assert set(env) <= {"Parameters", *FUNCTION_IDS}
    assert env["Parameters"]["REQUIRE_MOUNT"] == "false"
    # /tmp: the one writable directory every sam local container has (tests/sam_local runs it there).
    assert env["Parameters"]["MOUNT_ROOT"] == "/tmp"
    for logical_id in FUNCTION_IDS:
        declared = local_invoke.function_settings(build_dir, logical_id)[3]
        assert set(env["Parameters"]) | set(env.get(logical_id, {})) <= set(declared), logical_id


def run_cli(
    build_dir: Path, mount_root: Path, *args: str, under_make: bool = False
) -> subprocess.CompletedProcess[str]:
    """The script as a user runs it, or as `make invoke` does (make sets MAKELEVEL for its recipes)."""
    env = {k: v for k, v in os.environ.items() if k != "MAKELEVEL"} | (
        {"MAKELEVEL": "1"} if under_make else {}
    )
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--build-dir", str(build_dir), "--mount-root", str(mount_root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_cli_succeeds_and_prints_the_committed_path(build_dir: Path, mount_root: Path) -> None:
    done = run_cli(
        build_dir, mount_root, "--function", "writer", "--event", str(EVENTS / "writer-with-id.json")
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["statusCode"] == 200
    assert f"committed: {body['committed_path']}" in done.stderr
    assert Path(body["committed_path"]).is_file()


def test_cli_fails_on_a_400(build_dir: Path, mount_root: Path) -> None:
    done = run_cli(
        build_dir, mount_root, "--function", "writer", "--event", str(EVENTS / "writer-invalid-id.json")
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["statusCode"] == 400
    assert "statusCode 400" in done.stderr


def test_cli_fails_when_the_function_raises(build_dir: Path, mount_root: Path, tmp_path: Path) -> None:
    # A bad setting makes the handler raise (so Lambda would retry, then dead-letter the event).
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"Parameters": {"DOCUMENT_PREFIX": "../escape"}}))
    done = run_cli(build_dir, mount_root, "--function", "writer", "--env-file", str(env_file))
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "ConfigError"
    assert "the invocation failed (Unhandled)" in done.stderr
    assert "DOCUMENT_PREFIX" in done.stderr  # the function's own log is shown
    assert not (mount_root.parent / "escape").exists()


def test_cli_reports_setup_errors(build_dir: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    done = run_cli(build_dir, not_a_dir, "--function", "writer")
    assert done.returncode == 2
    assert "--mount-root" in done.stderr
    done = run_cli(tmp_path / "no-build", tmp_path / "s3data", "--function", "writer")
    assert done.returncode == 2
    assert "make build" in done.stderr


def test_cli_takes_the_function_from_the_event_file_name(build_dir: Path, mount_root: Path) -> None:
    done = run_cli(build_dir, mount_root, "--event", str(EVENTS / "reader-list.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"statusCode": 200, "keys": [], "next_cursor": None}
    assert files_under(mount_root) == []  # the reader ran: the writer would have stored the event


def test_cli_refuses_an_event_file_named_for_another_function(build_dir: Path, mount_root: Path) -> None:
    done = run_cli(build_dir, mount_root, "--function", "writer", "--event", str(EVENTS / "reader-list.json"))
    assert done.returncode == 2
    assert (
        "reader-list.json is named for the reader function, not writer: pass --function reader" in done.stderr
    )
    assert not mount_root.exists()


def test_cli_needs_the_function_for_an_event_file_named_for_none(
    build_dir: Path, mount_root: Path, tmp_path: Path
) -> None:
    event = tmp_path / "order.json"
    event.write_text(json.dumps({"id": "order-7"}))
    done = run_cli(build_dir, mount_root, "--event", str(event))
    assert done.returncode == 2
    assert "cannot tell the function from the event file name order.json: pass --function <" in done.stderr
    done = run_cli(build_dir, mount_root, "--event", str(event), under_make=True)
    assert done.returncode == 2
    assert "order.json: pass FUNCTION=<" in done.stderr
    done = run_cli(build_dir, mount_root, "--function", "writer", "--event", str(event))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"].endswith("/order-7.json")


@pytest.mark.parametrize(
    ("first", "second"),
    [("unzip-upload.json", "unzip.json"), ("unzip.json", "unzip-upload.json")],
)
def test_make_invoke_runs_either_unzip_sample_on_a_fresh_mount(
    build_dir: Path, mount_root: Path, first: str, second: str
) -> None:
    # What `make invoke FUNCTION=unzip EVENT=...` runs on a fresh clone: the sample archive is
    # placed on the mount first (as S3 Files' import would), so the first sample extracts it and
    # the second finds it already extracted.
    sample = EVENTS / "mount" / "unzip" / load_event("unzip.json")["archive"]
    done = run_cli(build_dir, mount_root, "--function", "unzip", "--event", str(EVENTS / first))
    assert done.returncode == 0, done.stderr
    assert "sample file placed on the mount" in done.stderr
    body = json.loads(done.stdout)
    assert (body["statusCode"], body["outcome"], body["files"]) == (200, "extracted", 2)
    destination = mount_root / body["destination"]
    assert (destination / "readme.txt").read_bytes() == b"hello\n"
    assert (mount_root / body["manifest"]).is_file()
    assert (mount_root / body["archive"]).read_bytes() == sample.read_bytes()
    again = run_cli(build_dir, mount_root, "--event", str(EVENTS / second))
    assert again.returncode == 0, again.stderr
    assert "sample file placed" not in again.stderr  # the same bytes were there already
    assert json.loads(again.stdout) == {**body, "outcome": "already extracted"}
