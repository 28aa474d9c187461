from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from s3files_store.exceptions import InvalidRequestError, UnsafePathError
from s3files_store.janitor import MAX_AGE_SECONDS, SweepResult, older_than_seconds, sweep

if TYPE_CHECKING:
    from pathlib import Path

NOW = 1_800_000_000.0
HOUR = 3600


def staging_file(root: Path, name: str, age_seconds: float) -> Path:
    path = root / ".staging" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"partial")
    os.utime(path, (NOW - age_seconds, NOW - age_seconds))
    return path


def test_missing_staging_directory_is_zero(tmp_path: Path) -> None:
    assert sweep(tmp_path, 900, 10, now=NOW) == SweepResult(0, 0, 0, False)


def test_removes_old_keeps_fresh(tmp_path: Path) -> None:
    old = [staging_file(tmp_path, f"old{i}.tmp", HOUR) for i in range(3)]
    fresh = staging_file(tmp_path, "fresh.tmp", 60)
    result = sweep(tmp_path, 900, 100, now=NOW)
    assert result == SweepResult(removed=3, kept=1, errors=0, truncated=False)
    assert not any(path.exists() for path in old)
    assert fresh.exists()


def test_never_touches_anything_outside_staging(tmp_path: Path) -> None:
    document = tmp_path / "documents" / "old.tmp"
    document.parent.mkdir()
    document.write_text("{}")
    os.utime(document, (NOW - 10 * HOUR, NOW - 10 * HOUR))
    staging_file(tmp_path, "old.tmp", HOUR)
    assert sweep(tmp_path, 900, 100, now=NOW).removed == 1
    assert document.exists()


def test_symlinks_and_directories_in_staging_are_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "documents" / "precious.tmp"
    target.parent.mkdir()
    target.write_text("{}")
    os.utime(target, (NOW - 10 * HOUR, NOW - 10 * HOUR))
    staging_file(tmp_path, "seed.tmp", 0).unlink()
    link = tmp_path / ".staging" / "link.tmp"
    link.symlink_to(target)
    os.utime(link, (NOW - 10 * HOUR, NOW - 10 * HOUR), follow_symlinks=False)
    subdir = tmp_path / ".staging" / "dir.tmp"
    subdir.mkdir()
    os.utime(subdir, (NOW - 10 * HOUR, NOW - 10 * HOUR))
    result = sweep(tmp_path, 900, 100, now=NOW)
    assert result == SweepResult(removed=0, kept=2, errors=0, truncated=False)
    assert target.read_text() == "{}"
    assert link.is_symlink()
    assert subdir.is_dir()


def test_only_tmp_files_are_removed(tmp_path: Path) -> None:
    other = staging_file(tmp_path, "README", HOUR)
    assert sweep(tmp_path, 900, 100, now=NOW) == SweepResult(removed=0, kept=1, errors=0, truncated=False)
    assert other.exists()


def test_staging_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.tmp"
    victim.write_text("x")
    os.utime(victim, (NOW - 10 * HOUR, NOW - 10 * HOUR))
    (tmp_path / ".staging").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match=r"\.staging on the mount is a symlink"):
        sweep(tmp_path, 900, 100, now=NOW)
    assert victim.exists()


def test_bound_is_respected_and_reported(tmp_path: Path) -> None:
    for i in range(5):
        staging_file(tmp_path, f"old{i}.tmp", HOUR)
    first = sweep(tmp_path, 900, 2, now=NOW)
    assert (first.removed, first.truncated) == (2, True)
    assert len(list((tmp_path / ".staging").iterdir())) == 3
    second = sweep(tmp_path, 900, 10, now=NOW)
    assert second == SweepResult(removed=3, kept=0, errors=0, truncated=False)


def test_unlink_errors_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging_file(tmp_path, "old.tmp", HOUR)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "unlink", refuse)
    assert sweep(tmp_path, 900, 10, now=NOW) == SweepResult(removed=0, kept=0, errors=1, truncated=False)


def test_default_now_is_the_file_system_clock(tmp_path: Path) -> None:
    old = staging_file(tmp_path, "old.tmp", 0)
    young = staging_file(tmp_path, "young.tmp", 0)
    os.utime(young, None)  # now, as the file system sees it
    then = young.stat().st_mtime - 2000
    os.utime(old, (then, then))
    assert sweep(tmp_path, 1000, 10) == SweepResult(removed=1, kept=1, errors=0, truncated=False)
    # The probe that read the clock is gone too.
    assert sorted(path.name for path in (tmp_path / ".staging").iterdir()) == ["young.tmp"]


def test_file_system_clock_beats_a_function_clock_that_runs_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    young = staging_file(tmp_path, "young.tmp", 0)
    os.utime(young, None)  # modified now, by the file system's clock
    # A function whose clock is an hour ahead would call the live file an hour old.
    monkeypatch.setattr(time, "time", lambda: young.stat().st_mtime + HOUR)
    assert sweep(tmp_path, 960, 10).removed == 0
    assert young.exists()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, 960),
        ({"detail-type": "Scheduled Event", "detail": {}}, 960),
        ({"older_than_seconds": 90}, 90),
        ({"older_than_seconds": MAX_AGE_SECONDS}, MAX_AGE_SECONDS),
    ],
)
def test_older_than_seconds_from_the_event(event: object, expected: int) -> None:
    assert older_than_seconds(event, default=960, minimum=90) == expected


@pytest.mark.parametrize("value", [0, -5, 89, 1.5, "600", True, [600], MAX_AGE_SECONDS + 1, 10**100])
def test_older_than_seconds_refuses_out_of_range_values(value: object) -> None:
    with pytest.raises(InvalidRequestError, match="older_than_seconds must be an integer from 90 to"):
        older_than_seconds({"older_than_seconds": value}, default=960, minimum=90)


@pytest.mark.parametrize("event", [[], ["older_than_seconds"], "sweep", 42, None])
def test_events_that_are_not_objects_are_refused(event: object) -> None:
    with pytest.raises(InvalidRequestError, match="must be a JSON object"):
        older_than_seconds(event, default=960, minimum=90)
