from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from s3files_store.exceptions import InvalidRequestError, StorageError
from s3files_store.janitor import SweepResult, older_than_seconds, sweep

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
    with pytest.raises(StorageError, match="not a symlink"):
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


def test_default_now_is_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / ".staging" / "old.tmp"
    path.parent.mkdir()
    path.write_text("x")
    os.utime(path, (1, 1))
    assert sweep(tmp_path, 900, 10).removed == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, 900),
        ({"detail-type": "Scheduled Event", "detail": {}}, 900),
        ([], 900),
        ({"older_than_seconds": 60}, 60),
    ],
)
def test_older_than_seconds_from_the_event(event: object, expected: int) -> None:
    assert older_than_seconds(event, default=900) == expected


@pytest.mark.parametrize("value", [0, -5, 1.5, "60", True, [60]])
def test_older_than_seconds_refuses_anything_but_a_positive_integer(value: object) -> None:
    with pytest.raises(InvalidRequestError, match="older_than_seconds must be an integer > 0"):
        older_than_seconds({"older_than_seconds": value}, default=900)
