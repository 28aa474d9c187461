from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store import documents
from s3files_store.config import Config
from s3files_store.documents import (
    MAX_DIRECTORIES_READ,
    MAX_WARNINGS,
    latest_key,
    read_document,
    write_document,
)
from s3files_store.exceptions import (
    DeadlineError,
    InvalidRequestError,
    MountError,
    NotFoundError,
    StorageError,
    UnsafePathError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

WHEN = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)


def clock() -> datetime:
    return WHEN


def write(event: Any, config: Config, remaining_ms: int = 30_000, request_id: str = "req-1") -> Any:
    return write_document(event, request_id, remaining_ms, config, clock=clock)


def test_write_commits_compact_json_under_dated_key(config: Config, tmp_path: Path) -> None:
    event = {"id": "order-42", "name": "café ☕", "items": [1, 2]}
    result = write(event, config)
    assert result.key == "documents/2026/11/27/order-42.json"
    stored = (tmp_path / result.key).read_bytes()
    assert stored == '{"id":"order-42","name":"café ☕","items":[1,2]}'.encode()
    assert result.bytes == len(stored)


def test_request_id_names_the_document_when_the_event_has_no_id(config: Config) -> None:
    result = write({"total": 1}, config, request_id="8c5a9b2e-1f3d-4d8a-9c1e-000000000001")
    assert result.key == "documents/2026/11/27/8c5a9b2e-1f3d-4d8a-9c1e-000000000001.json"


def test_configured_id_field_and_prefix(tmp_path: Path) -> None:
    config = Config(mount_root=tmp_path, id_field="orderId", document_prefix="tenant/docs")
    assert write({"orderId": "A-1", "id": "ignored"}, config).key == "tenant/docs/2026/11/27/A-1.json"


def test_same_id_twice_keeps_the_last_document(config: Config, tmp_path: Path) -> None:
    write({"id": "x", "v": 1}, config)
    result = write({"id": "x", "v": 2}, config)
    assert json.loads((tmp_path / result.key).read_bytes()) == {"id": "x", "v": 2}
    assert [path.name for path in (tmp_path / "documents/2026/11/27").iterdir()] == ["x.json"]


@pytest.mark.parametrize("remaining_ms", [0, 2999])
def test_deadline_guard_writes_nothing(config: Config, tmp_path: Path, remaining_ms: int) -> None:
    with pytest.raises(DeadlineError, match=f"only {remaining_ms} ms left.*DEADLINE_MARGIN_MS=3000"):
        write({"id": "late"}, config, remaining_ms=remaining_ms)
    assert list(tmp_path.iterdir()) == []


def test_deadline_margin_boundary_writes(config: Config) -> None:
    assert write({"id": "just-in-time"}, config, remaining_ms=3000).bytes > 0


@pytest.mark.parametrize(
    "event",
    [
        {"id": "../escape"},
        {"id": "a..b"},
        {"id": 7},
        {"id": None},
        {"id": ["a"]},
        {"id": {"nested": 1}},
        {"id": "x" * 129},
        {"id": ".staging"},
        ["not", "an", "object"],
        "text",
        {"id": "ok", "value": float("nan")},
        {"id": "ok", "value": {1, 2}},
    ],
)
def test_bad_requests_write_nothing(config: Config, tmp_path: Path, event: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        write(event, config)
    assert caught.value.status_code == 400
    assert list(tmp_path.iterdir()) == []


def test_invalid_request_id_is_refused(config: Config, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="request id"):
        write({"v": 1}, config, request_id="../../etc/passwd")
    assert list(tmp_path.iterdir()) == []


def test_missing_mount_is_a_mount_error(tmp_path: Path) -> None:
    with pytest.raises(MountError):
        write({"id": "a"}, Config(mount_root=tmp_path / "absent"))


def test_storage_failure_invalidates_the_mount_check(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write({"id": "a"}, config)
    monkeypatch.setattr(os, "rename", lambda *args, **kw: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    with pytest.raises(StorageError, match="read-only"):
        write({"id": "b"}, config)
    monkeypatch.undo()
    # The next invoke checks the mount again: a vanished root is now reported precisely.
    shutil.rmtree(tmp_path)
    with pytest.raises(MountError, match="does not exist"):
        write({"id": "c"}, config)


def test_read_back(config: Config) -> None:
    result = write({"id": "r1", "n": [1, {"a": None}]}, config)
    assert read_document(result.key, config) == {"id": "r1", "n": [1, {"a": None}]}


def test_read_missing_is_404(config: Config) -> None:
    with pytest.raises(NotFoundError) as caught:
        read_document("documents/2026/11/27/absent.json", config)
    assert caught.value.status_code == 404


def test_read_directory_is_409_naming_it(config: Config) -> None:
    write({"id": "r1"}, config)
    with pytest.raises(
        UnsafePathError, match=r"documents/2026 on the mount is a directory, not a document"
    ) as caught:
        read_document("documents/2026", config)
    assert caught.value.status_code == 409
    assert "{'prefix': 'documents/2026'}" in str(caught.value)


def test_read_unparsable_is_storage_error(config: Config, tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents/broken.json").write_bytes(b'{"half":')
    with pytest.raises(StorageError, match="not valid JSON") as caught:
        read_document("documents/broken.json", config)
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    "key",
    [
        "../outside.json",
        "/etc/passwd",
        "a/../../outside.json",
        "a\x00b",
        ".staging/x.tmp",
        "%2e%2e/outside.json",
    ],
)
def test_read_hostile_keys_are_400_and_read_nothing_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.json").write_text('{"secret": true}')
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda path, *args, **kw: opened.append(str(path)) or real_open(path, *args, **kw)
    )
    with pytest.raises(InvalidRequestError):
        read_document(key, Config(mount_root=root))
    assert opened == []


def test_read_through_symlink_leaving_root_is_409(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.json").write_text('{"secret": true}')
    (root / "documents").mkdir()
    (root / "documents" / "leak.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(
        UnsafePathError, match=r"documents/leak.json on the mount is a symlink.*Remove it"
    ) as caught:
        read_document("documents/leak.json", Config(mount_root=root))
    assert caught.value.status_code == 409


def test_latest_key_finds_the_newest_day(config: Config) -> None:
    for day in (3, 27, 9):
        write_document(
            {"id": "order-42", "day": day}, "r", 30_000, config, clock=lambda d=day: WHEN.replace(day=d)
        )
    write_document({"id": "other"}, "r", 30_000, config, clock=lambda: WHEN.replace(day=28))
    key = latest_key("order-42", config)
    assert key == "documents/2026/11/27/order-42.json"
    assert read_document(key, config) == {"id": "order-42", "day": 27}


def test_latest_key_crosses_years_and_months(config: Config) -> None:
    write_document({"id": "a"}, "r", 30_000, config, clock=lambda: datetime(2025, 12, 31, tzinfo=UTC))
    write_document({"id": "b"}, "r", 30_000, config, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert latest_key("a", config) == "documents/2025/12/31/a.json"


def test_latest_key_not_found_is_404(config: Config) -> None:
    write_document({"id": "a"}, "r", 30_000, config, clock=clock)
    with pytest.raises(
        NotFoundError,
        match=r"id 'nope' under documents/ \(day directories searched, newest first: 1 of at most 366\)",
    ) as caught:
        latest_key("nope", config)
    assert caught.value.status_code == 404
    with pytest.raises(NotFoundError):
        latest_key("a", Config(mount_root=config.mount_root, document_prefix="elsewhere"))


def test_latest_key_searches_a_bounded_number_of_days(config: Config, tmp_path: Path) -> None:
    write_document({"id": "old"}, "r", 30_000, config, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    for month in range(1, 13):
        for day in range(1, 32):  # 366 real days of 2024, and 6 names that are no date
            (tmp_path / f"documents/2024/{month:02}/{day:02}").mkdir(parents=True)
    with pytest.raises(NotFoundError, match="searched, newest first: 366 of at most 366"):
        latest_key("old", config)
    shutil.rmtree(tmp_path / "documents/2024/01/01")
    assert latest_key("old", config) == "documents/2020/01/01/old.json"


@pytest.mark.parametrize("bad", ["../x", "", 7, None])
def test_latest_key_refuses_bad_ids(config: Config, bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        latest_key(bad, config)


# Reads by id on hostile trees: what was planted is skipped, named in a warning, and hides nothing.

TODAY = datetime.now(UTC).date()
OUTSIDE = b'{"secret": "outside the root"}'


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The warnings logged so far (then forgotten), with their message and extra keys."""

    def logged() -> list[dict[str, Any]]:
        records = [
            {"message": r.getMessage(), **r.__dict__} for r in caplog.records if r.levelname == "WARNING"
        ]
        caplog.clear()
        return records

    return logged


@pytest.fixture
def directory_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every directory opened from now on, by name (os.open with O_DIRECTORY)."""
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & os.O_DIRECTORY:
            opened.append(str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", counting_open)
    return opened


def skipped(records: list[dict[str, Any]]) -> dict[str, str]:
    return {record["entry"]: record["reason"] for record in records if record["message"] == "entry skipped"}


def day_dir(root: Path, day: date) -> Path:
    return root / f"documents/{day:%Y/%m/%d}"


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_future_dates_non_dates_and_files_are_skipped_and_named(
    config: Config, tmp_path: Path, warnings: Callable[[], list[dict[str, Any]]]
) -> None:
    key = write({"id": "a"}, config).key
    documents = tmp_path / "documents"
    (documents / "2099").write_text("a file named like a future year")
    after_tomorrow = TODAY + timedelta(days=3)  # not tomorrow, whatever the hour
    for planted in (documents / "9999/12/31", day_dir(tmp_path, after_tomorrow), documents / "2026/13/01"):
        planted.mkdir(parents=True, exist_ok=True)
        (planted / "a.json").write_text('{"planted": true}')
    (documents / "2026/11/31").mkdir()  # November has 30 days
    (documents / "notes").mkdir()
    (documents / ".hidden").mkdir()
    assert latest_key("a", config) == key
    reasons = skipped(warnings())
    assert reasons["documents/2099"] == "it is a regular file, not a directory"
    assert reasons["documents/9999"].startswith("it is dated after tomorrow by the file system's clock")
    future = f"{after_tomorrow:%Y}" if after_tomorrow.year > TODAY.year else f"{after_tomorrow:%Y/%m/%d}"
    assert "dated after tomorrow" in reasons[f"documents/{future}"]
    for no_date in ("documents/2026/13", "documents/2026/11/31", "documents/notes"):
        assert reasons[no_date] == "its name is not a date of the writer's layout (YYYY/MM/DD)"
    assert not any(".hidden" in entry for entry in reasons)


def test_366_future_dated_empty_days_hide_nothing(
    config: Config,
    tmp_path: Path,
    warnings: Callable[[], list[dict[str, Any]]],
    directory_opens: list[str],
) -> None:
    key = write({"id": "a"}, config).key
    for n in range(3, 3 + 400):
        day_dir(tmp_path, TODAY + timedelta(days=n)).mkdir(parents=True)
    directory_opens.clear()
    assert latest_key("a", config) == key
    # The root, the prefix, and the year, month and day directories down to the document (and the
    # current month, which holds only future days): none of the 400 planted days.
    assert len(directory_opens) <= 7, directory_opens
    records = warnings()
    assert len(skipped(records)) == MAX_WARNINGS
    unnamed = [record for record in records if record["message"] == "entries skipped"]
    assert len(records) > MAX_WARNINGS and len(unnamed) == len(records) - MAX_WARNINGS == 1


def test_a_slow_lambda_clock_hides_nothing(config: Config, tmp_path: Path) -> None:
    """Dates after the Lambda clock's tomorrow stand when the file system's clock vouches for them."""
    key = write({"id": "a"}, config).key
    (tmp_path / "documents/9999/01/01").mkdir(parents=True)
    (tmp_path / "documents/9999/01/01/a.json").write_text('{"planted": true}')
    assert latest_key("a", config, clock=lambda: datetime(2000, 1, 1, tzinfo=UTC)) == key


def test_empty_year_and_month_directories_spend_one_budget(
    config: Config, tmp_path: Path, directory_opens: list[str]
) -> None:
    key = write({"id": "a"}, config).key
    documents = tmp_path / "documents"
    for year in range(1000, 2026):
        (documents / f"{year}").mkdir()
    for year in range(2000, 2026):
        for month in range(1, 13):
            (documents / f"{year}/{month:02}").mkdir()
    directory_opens.clear()
    fds = open_fds()
    assert latest_key("a", config) == key
    assert len(directory_opens) == 5  # root, documents, 2026, 11, 27
    assert open_fds() == fds
    directory_opens.clear()
    with pytest.raises(NotFoundError, match=f"stopped at its budget of {MAX_DIRECTORIES_READ} directories"):
        latest_key("absent", config)
    assert len(directory_opens) == 2 + MAX_DIRECTORIES_READ  # the root and the prefix, then the budget
    assert open_fds() == fds


def test_a_planted_huge_directory_costs_no_memory(
    config: Config, tmp_path: Path, warnings: Callable[[], list[dict[str, Any]]]
) -> None:
    """Its names are streamed, never held: listing 20,000 names of 120 bytes would take 3 MB."""
    key = write({"id": "a"}, config).key
    documents = tmp_path / "documents"
    for n in range(20_000):
        os.close(os.open(documents / f"{n:05}-{'x' * 114}", os.O_CREAT | os.O_WRONLY))
    for year in range(1, 10_000, 7):  # years, plausible or not, are bounded by a heap
        (documents / f"{year:04}").mkdir(exist_ok=True)
    warnings()
    tracemalloc.start()
    try:
        assert latest_key("a", config) == key
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 500_000, f"{peak:,} bytes"
    assert len(warnings()) == MAX_WARNINGS + 1


def _plant_directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.json").write_text("{}")


def _plant_fifo(path: Path) -> None:
    os.mkfifo(path)


def _plant_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))


def _plant_symlink(path: Path) -> None:
    outside = path.parents[5] / f"{path.parents[5].name}-outside.json"
    outside.write_bytes(OUTSIDE)
    path.symlink_to(outside)


def _plant_hard_link(path: Path) -> None:
    outside = path.parents[5] / f"{path.parents[5].name}-outside.json"
    outside.write_bytes(OUTSIDE)
    os.link(outside, path)


@pytest.mark.parametrize(
    ("plant", "kind"),
    [
        (_plant_directory, "a directory"),
        (_plant_fifo, "a FIFO"),
        (_plant_socket, "a socket"),
        (_plant_symlink, "a symlink"),
        (_plant_hard_link, "a file with 2 hard links"),
    ],
    ids=["directory", "fifo", "socket", "symlink", "hard-link"],
)
def test_a_non_document_at_the_id_on_a_newer_day_hides_nothing(
    config: Config,
    tmp_path: Path,
    warnings: Callable[[], list[dict[str, Any]]],
    plant: Callable[[Path], None],
    kind: str,
) -> None:
    key = write({"id": "a"}, config).key
    newer = tmp_path / "documents/2026/11/28"
    newer.mkdir()
    plant(newer / "a.json")
    assert latest_key("a", config) == key
    assert skipped(warnings()) == {
        "documents/2026/11/28/a.json": f"it is {kind}, not a document: older days are searched"
    }


def test_a_symlinked_day_is_skipped_and_never_followed(
    config: Config, tmp_path: Path, warnings: Callable[[], list[dict[str, Any]]]
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "a.json").write_bytes(OUTSIDE)
    (outside / "b.json").write_bytes(OUTSIDE)
    key = write({"id": "a"}, config).key
    (tmp_path / "documents/2026/11/30").symlink_to(outside)
    assert latest_key("a", config) == key
    with pytest.raises(NotFoundError):
        latest_key("b", config)
    assert skipped(warnings()) == {"documents/2026/11/30": "it is a symlink, not a directory"}


_AS_ANOTHER_UID = """
import json, os, sys
from pathlib import Path
from s3files_store.config import Config
from s3files_store.documents import latest_key

root = Path(sys.argv[1])
for locked in sys.argv[2:]:
    try:
        os.listdir(root / locked)
    except PermissionError:
        continue
    sys.exit(f"{locked} is readable: the test would prove nothing")
print(json.dumps({"key": latest_key("a", Config(mount_root=root))}))
"""


def test_unreadable_directories_are_skipped_named_and_logged(config: Config, tmp_path: Path) -> None:
    """Another uid's 0700 directories, read by root without CAP_DAC_OVERRIDE/READ_SEARCH: really denied."""
    key = write({"id": "a"}, config).key
    locked = ["documents/2026/12", "documents/2026/11/29"]
    for name in locked:
        (tmp_path / name).mkdir()
        (tmp_path / name).chmod(0o700)
        os.chown(tmp_path / name, 4242, 4242)
    (tmp_path / "documents/2026/11/29/a.json").write_text('{"hidden": true}')
    env = {**os.environ, "PYTHONPATH": str(Path(documents.__file__).parents[1])}
    command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    result = subprocess.run(
        [*command, sys.executable, "-c", _AS_ANOTHER_UID, str(tmp_path), *locked],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *logs, answer = [json.loads(line) for line in result.stdout.splitlines()]
    assert answer == {"key": key}
    reason = "it cannot be read (permission denied: it belongs to another user or access point)"
    assert skipped(logs) == dict.fromkeys(locked, reason)


def test_read_of_a_hard_link_is_409_naming_it(config: Config, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_bytes(OUTSIDE)
    (tmp_path / "documents").mkdir()
    os.link(outside, tmp_path / "documents/linked.json")
    with pytest.raises(
        UnsafePathError, match=r"documents/linked\.json on the mount has 2 hard links"
    ) as caught:
        read_document("documents/linked.json", config)
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("stored", "where"),
    [
        (b'{"v": ["ok", "x\\ud800y"]}', '$["v"][1]'),
        (b'{"v": "\\uDFFF"}', '$["v"]'),
        (b'{"v": "\\ud83d"}', '$["v"]'),  # the first half of a pair, alone
        (b'{"v": {"\\udc00": 1}}', '$["v"], in the member name "\\udc00"'),
        (b'["\xed\xa0\x80"]', "$[0]"),  # a surrogate's bytes, which json.loads decodes too
    ],
    ids=["escape", "upper-case", "high-half", "member-name", "raw-bytes"],
)
def test_a_lone_surrogate_is_refused_naming_where(
    config: Config, tmp_path: Path, stored: bytes, where: str
) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents/odd.json").write_bytes(stored)
    with pytest.raises(InvalidRequestError, match="holds a lone surrogate") as caught:
        read_document("documents/odd.json", config)
    assert caught.value.status_code == 400
    assert f"at {where}: that text has no UTF-8 form" in str(caught.value)
    assert str(caught.value).isascii()


def test_escaped_surrogate_pairs_are_read(config: Config, tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents/emoji.json").write_bytes(b'{"v": "\\ud83d\\ude00 \\\\ud800"}')
    assert read_document("documents/emoji.json", config) == {"v": "\N{GRINNING FACE} \\ud800"}
