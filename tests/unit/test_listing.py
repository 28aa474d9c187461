from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

from s3files_store import listing
from s3files_store.config import Config
from s3files_store.exceptions import InvalidRequestError, UnsafePathError
from s3files_store.listing import MAX_DEPTH, list_documents

if TYPE_CHECKING:
    from collections.abc import Iterator

LAYER = Path(listing.__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture
def populated(config: Config, tmp_path: Path) -> list[str]:
    keys = []
    for day in ("01", "02", "10"):
        for name in ("b", "a", "a.x", "c-1"):
            path = tmp_path / "documents/2026/11" / day / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            keys.append(f"documents/2026/11/{day}/{name}.json")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "abc.tmp").write_text("partial")
    # Only .staging holds staging files: a *.tmp name anywhere else is a user's document.
    (tmp_path / "documents/2026/11/01/left.tmp").write_text("{}")
    keys.append("documents/2026/11/01/left.tmp")
    (tmp_path / "documents/2026/11/x.tmp").mkdir()
    (tmp_path / "documents/2026/11/x.tmp/a.json").write_text("{}")
    keys.append("documents/2026/11/x.tmp/a.json")
    (tmp_path / "documents/.hidden.json").write_text("{}")
    (tmp_path / "documents/2026/11/01/zz-link.json").symlink_to(tmp_path / "documents/2026/11/01/a.json")
    return sorted(keys, key=lambda key: key.split("/"))


def test_list_everything_in_order(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=1000)
    assert keys == populated
    assert cursor is None


def test_list_pages_with_cursor(config: Config, populated: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        keys, cursor = list_documents("documents", config, limit=5, cursor=cursor)
        seen.extend(keys)
        pages += 1
        if cursor is None:
            break
        assert cursor == keys[-1]
    assert seen == populated
    assert pages == 3


def test_list_exact_page_has_no_next_cursor(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=len(populated))
    assert len(keys) == len(populated)
    assert cursor is None


def test_list_subdirectory_prefix(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("documents/2026/11/02", config)
    assert keys == [key for key in populated if "/02/" in key]


def test_list_root_never_shows_staging(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("", config, limit=1000)
    assert keys == populated
    assert not any(".staging" in key for key in keys)


def test_list_cursor_survives_deleted_key(config: Config, populated: list[str], tmp_path: Path) -> None:
    first, cursor = list_documents("documents", config, limit=2)
    assert cursor is not None
    (tmp_path / cursor).unlink()
    rest, _ = list_documents("documents", config, limit=1000, cursor=cursor)
    assert first == populated[:2]
    assert rest == populated[2:]


def test_list_missing_prefix_is_empty(config: Config) -> None:
    assert list_documents("documents/1999", config) == ([], None)


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", 1.5, True, None])
def test_list_limit_bounds(config: Config, limit: object) -> None:
    with pytest.raises(InvalidRequestError, match="limit"):
        list_documents("documents", config, limit=limit)


@pytest.mark.parametrize("bad", ["../x", "/etc", ".staging", "a\x00"])
def test_list_hostile_prefix_and_cursor(config: Config, bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="prefix"):
        list_documents(bad, config)
    with pytest.raises(InvalidRequestError, match="cursor"):
        list_documents("documents", config, cursor=bad)


def test_list_symlinked_prefix_leaving_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    root = tmp_path / "root"
    root.mkdir()
    (root / "documents").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="documents on the mount is a symlink"):
        list_documents("documents", Config(mount_root=root))


def test_list_tmp_names_are_documents(config: Config, tmp_path: Path) -> None:
    for key in ("documents/b.tmp", "documents/x.tmp/a.json", "documents/x.tmp/y.tmp/c.tmp"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("{}")
    assert list_documents("documents", config) == (
        ["documents/b.tmp", "documents/x.tmp/a.json", "documents/x.tmp/y.tmp/c.tmp"],
        None,
    )


# Run as uid 65534 in a fresh process: root reads every directory whatever its mode. The process
# imports and enters the root before dropping privileges, so the 0700 directories above tmp_path
# and the interpreter's stay closed.
_AS_NOBODY = f"""
import json, os, sys
from pathlib import Path
from s3files_store.config import Config
from s3files_store.exceptions import StorageError
from s3files_store.listing import list_documents
os.chdir(sys.argv[1])
os.setgroups([])
os.setgid({NOBODY})
os.setuid({NOBODY})
config = Config(mount_root=Path("."))
try:
    os.listdir("documents/2026/11/02")
    denied = False
except PermissionError:
    denied = True
keys, cursor = list_documents("documents", config, limit=1000)
try:
    list_documents("documents/2026/11/02", config)
    refused = ""
except StorageError as exc:
    refused = str(exc)
print(json.dumps({{"denied": denied, "keys": keys, "cursor": cursor, "refused": refused}}))
"""


def test_list_skips_and_names_unreadable_directories(tmp_path: Path) -> None:
    for key in ("01/a.json", "01/b.json", "02/secret.json", "03/c.json", "04/d.json"):
        path = tmp_path / "documents/2026/11" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    tmp_path.chmod(0o755)
    (tmp_path / "documents/2026/11/02").chmod(0o700)  # another user's directory
    (tmp_path / "documents/2026/11/04").chmod(0o744)  # its names readable, its entries not
    result = subprocess.run(
        [sys.executable, "-B", "-c", _AS_NOBODY, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(LAYER)},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *logs, outcome = lines
    assert outcome["denied"], "uid 65534 could read the 0700 directory: the test proves nothing"
    assert outcome["keys"] == [f"documents/2026/11/{key}" for key in ("01/a.json", "01/b.json", "03/c.json")]
    assert outcome["cursor"] is None
    skipped = [log for log in logs if log["message"] == "entry skipped"]
    assert [log["entry"] for log in skipped] == ["documents/2026/11/02", "documents/2026/11/04/d.json"]
    assert all(log["level"] == "WARNING" and "[EACCES]" in log["reason"] for log in skipped)
    # The prefix itself unreadable: nothing to list, so the request fails, naming it.
    assert "listing of 'documents/2026/11/02' failed" in outcome["refused"]


def _position(cursor: str) -> tuple[str, ...]:
    """Where a cursor stands: after its key and after everything below it (a directory done)."""
    return (*cursor.split("/"), "\uffff")


def _all_pages(config: Config, prefix: str, limit: int) -> tuple[list[str], list[tuple[int, str | None]]]:
    seen: list[str] = []
    pages: list[tuple[int, str | None]] = []
    cursor = None
    while True:
        keys, following = list_documents(prefix, config, limit=limit, cursor=cursor)
        assert len(keys) <= limit
        if following is not None:
            assert all(_position(key) <= _position(following) for key in keys)
            assert cursor is None or _position(following) > _position(cursor), "the cursor went back"
        seen.extend(keys)
        pages.append((len(keys), following))
        cursor = following
        if cursor is None:
            return seen, pages
        assert len(pages) < 10_000


def _bound(limit: int) -> int:
    """Names one directory may keep for a page of ``limit``: see listing._frame."""
    return 2 * limit + 2 * MAX_DEPTH + 2


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_list_pages_through_directories_larger_than_a_page_holds(
    config: Config, tmp_path: Path, limit: int
) -> None:
    # More names than a directory may keep for a page, runs of symlinks longer than that (which
    # use up the kept names and end pages early), nested directories that are large too.
    keys = []
    for d in range(3):
        day = tmp_path / "documents" / f"d-{d}"
        (day / "sub").mkdir(parents=True)
        for i in range(3 * _bound(limit)):
            name = f"{i:04d}.json"
            if i % 100 < 60:
                (day / name).symlink_to(tmp_path / "documents")
            else:
                os.close(os.open(day / name, os.O_CREAT | os.O_WRONLY, 0o640))
                keys.append(f"documents/d-{d}/{name}")
            os.close(os.open(day / "sub" / name, os.O_CREAT | os.O_WRONLY, 0o640))
            keys.append(f"documents/d-{d}/sub/{name}")
    seen, pages = _all_pages(config, "documents", limit)
    assert seen == sorted(keys, key=lambda key: key.split("/"))
    # Pages ended early, within a directory, at the symlinks: the path this test is about was taken.
    assert any(count < limit and cursor is not None for count, cursor in pages), "no page ended early"


class _Name(str):
    """A directory entry's name that counts how many such names are alive."""

    alive: ClassVar[int] = 0
    peak: ClassVar[int] = 0

    def __new__(cls, value: str) -> _Name:
        name = super().__new__(cls, value)
        _Name.alive += 1
        _Name.peak = max(_Name.peak, _Name.alive)
        return name

    def __del__(self) -> None:
        _Name.alive -= 1


class _Entry:
    def __init__(self, name: str) -> None:
        self.name = _Name(name)


_real_scandir = os.scandir


@contextlib.contextmanager
def _counted_scandir(fd: int) -> Iterator[Iterator[_Entry]]:
    with _real_scandir(fd) as entries:
        yield (_Entry(entry.name) for entry in entries)


@pytest.mark.parametrize("limit", [1, 10])
def test_list_memory_does_not_grow_with_the_directory(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    peaks = []
    for size in (1_000, 4_000):
        day = tmp_path / f"day-{size}"
        day.mkdir()
        for i in range(size):
            os.close(os.open(day / f"{i:05d}.json", os.O_CREAT | os.O_WRONLY, 0o640))
        _Name.alive = _Name.peak = 0
        with monkeypatch.context() as patch:
            patch.setattr(os, "scandir", _counted_scandir)
            keys, cursor = list_documents(f"day-{size}", config, limit=limit, cursor=f"day-{size}/00500.json")
        assert keys == [f"day-{size}/{i:05d}.json" for i in range(501, 501 + limit)]
        assert cursor == keys[-1]
        peaks.append(_Name.peak)
    # The names one directory keeps for the page, and a few in flight: not the directory.
    assert peaks[0] <= 2 * _bound(limit), peaks
    assert peaks[1] == peaks[0], f"the names held grew with the directory: {peaks}"
