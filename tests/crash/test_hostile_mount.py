"""Hostile shapes planted on the mount, on a plain directory and on a real tmpfs, against the real
handlers: symlinked partitions, `.staging` and documents (to outside the root, to hidden
directories, to the root itself), FIFOs and devices, deep trees, and directory swaps raced by a
thread for seconds against the reader, the listing and the writer. Nothing outside the root is
ever read, listed or written; every refusal says what stands where and what to remove."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from testkit import FakeContext

from s3files_store import tree
from s3files_store.exceptions import StorageError, UnsafePathError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"
# A cap, not a goal: a race stops as soon as it has counted every interleaving it must prove.
RACE_LIMIT_SECONDS = 120.0


@pytest.fixture
def jail(ground: Path, mount_root_at: Callable[[Path], Path]) -> Path:
    """The mount root `ground/s3data`; `ground/outside` mirrors a document tree full of secrets."""
    root = ground / "s3data"
    root.mkdir()
    outside = ground / "outside"
    for directory in (outside, outside / "2026" / "11" / "27", outside / ".staging"):
        directory.mkdir(parents=True, exist_ok=True)
    for path in (outside / "a.json", outside / "2026/11/27/a.json", outside / "2026/11/27/only-outside.json"):
        path.write_text(json.dumps({"secret": SECRET}))
    hidden = root / ".s3files-lost+found-fs-0123"
    hidden.mkdir()
    (hidden / "a.json").write_text(json.dumps({"secret": SECRET}))
    return mount_root_at(root)


def outside_snapshot(ground: Path) -> dict[str, tuple[int, int, int]]:
    """Everything in `ground` but the root's own tree."""
    found = {}
    for path in ground.rglob("*"):
        if path.is_relative_to(ground / "s3data"):
            continue
        info = path.lstat()
        found[str(path.relative_to(ground))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def today() -> tuple[str, str, str]:
    now = datetime.now(UTC)
    return f"{now:%Y}", f"{now:%m}", f"{now:%d}"


def link_targets(jail: Path) -> dict[str, Path]:
    return {
        "outside": jail.parent / "outside",
        "hidden": jail / ".s3files-lost+found-fs-0123",
        "root": jail,
    }


TARGETS = ["outside", "hidden", "root"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("depth", [1, 2, 4], ids=["documents", "year", "day"])
def test_writer_refuses_a_symlinked_partition(
    writer: ModuleType, jail: Path, ground: Path, target: str, depth: int
) -> None:
    parts = ("documents", *today())[:depth]
    jail.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
    jail.joinpath(*parts).symlink_to(link_targets(jail)[target], target_is_directory=True)
    before = outside_snapshot(ground)
    with pytest.raises(UnsafePathError, match=f"{'/'.join(parts)} on the mount is a symlink.*Remove it"):
        writer.handler({"id": "order-1", "total": 1}, FakeContext())
    assert outside_snapshot(ground) == before
    assert not any(p.name == "order-1.json" for p in ground.rglob("*"))
    assert list((jail / ".staging").iterdir()) == []


@pytest.mark.parametrize("target", TARGETS)
def test_writer_refuses_a_symlinked_staging_directory(
    writer: ModuleType, janitor: ModuleType, jail: Path, ground: Path, target: str
) -> None:
    staging_target = link_targets(jail)[target] / (".staging" if target == "outside" else "")
    (jail / ".staging").symlink_to(staging_target, target_is_directory=True)
    before = outside_snapshot(ground)
    with pytest.raises(UnsafePathError, match=r"\.staging on the mount is a symlink"):
        writer.handler({"id": "order-1"}, FakeContext())
    with pytest.raises(UnsafePathError, match=r"\.staging on the mount is a symlink"):
        janitor.handler({}, FakeContext())
    assert outside_snapshot(ground) == before


def test_writer_replaces_a_planted_document_symlink_without_following_it(
    writer: ModuleType, jail: Path, ground: Path
) -> None:
    day = jail.joinpath("documents", *today())
    day.mkdir(parents=True)
    (day / "order-1.json").symlink_to(ground / "outside" / "a.json")
    before = outside_snapshot(ground)
    response = writer.handler({"id": "order-1", "v": 2}, FakeContext())
    assert response["statusCode"] == 200
    committed = day / "order-1.json"
    assert stat.S_ISREG(committed.lstat().st_mode)
    assert json.loads(committed.read_text()) == {"id": "order-1", "v": 2}
    assert outside_snapshot(ground) == before


@pytest.mark.parametrize("target", TARGETS)
def test_reader_refuses_symlinks_and_lists_none(
    reader: ModuleType, jail: Path, ground: Path, target: str
) -> None:
    documents = jail / "documents"
    (documents / "real").mkdir(parents=True)
    (documents / "real" / "ok.json").write_text('{"ok": true}')
    (documents / "dir-link").symlink_to(link_targets(jail)[target], target_is_directory=True)
    (documents / "real" / "file-link.json").symlink_to(link_targets(jail)[target] / "a.json")
    for event in (
        {"key": "documents/dir-link/a.json"},
        {"key": "documents/real/file-link.json"},
        {"prefix": "documents/dir-link"},
    ):
        response = reader.handler(event, FakeContext())
        assert response["statusCode"] == 409, (event, response)
        assert "symlink" in response["error"] and "Remove it" in response["error"]
        assert SECRET not in json.dumps(response)
    for prefix in ("documents", ""):
        listing = reader.handler({"prefix": prefix, "limit": 1000}, FakeContext())
        assert listing == {"statusCode": 200, "keys": ["documents/real/ok.json"], "next_cursor": None}


def test_reader_refuses_fifos_and_devices_without_hanging(reader: ModuleType, jail: Path) -> None:
    documents = jail / "documents"
    documents.mkdir()
    os.mkfifo(documents / "fifo.json")
    os.mknod(documents / "device.json", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    (documents / "ok.json").write_text("{}")
    for name, kind in (("fifo.json", "a FIFO"), ("device.json", "a device")):
        started = time.monotonic()
        response = reader.handler({"key": f"documents/{name}"}, FakeContext())
        assert time.monotonic() - started < 5
        assert response["statusCode"] == 409, response
        assert f"documents/{name} on the mount is {kind}, not a regular file" in response["error"]
    listing = reader.handler({"prefix": "documents"}, FakeContext())
    assert listing["keys"] == ["documents/ok.json"]


def test_listing_a_planted_deep_tree_is_bounded(reader: ModuleType, jail: Path) -> None:
    """1,100 nested directories: no recursion, nothing deeper than MAX_DEPTH, and paging ends."""
    deep = jail / "documents"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1100):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    with os.fdopen(os.open("deepest.json", os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd), "w") as file:
        file.write("{}")
    os.close(fd)
    (jail / "documents" / "z.json").write_text("{}")
    keys: list[str] = []
    cursor = None
    for _ in range(50):
        page = reader.handler({"prefix": "documents", "limit": 1, "cursor": cursor}, FakeContext())
        assert page["statusCode"] == 200, page
        keys += page["keys"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None, "paging did not end"
    assert keys == ["documents/z.json"]


def test_deeply_nested_documents(reader: ModuleType, writer: ModuleType, jail: Path) -> None:
    documents = jail / "documents"
    documents.mkdir()
    (documents / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StorageError, match="nests deeper than the parser allows"):
        reader.handler({"key": "documents/deep.json"}, FakeContext())
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    response = writer.handler({"id": "deep", "v": nested}, FakeContext())
    assert response["statusCode"] == 400
    assert "deeper than JSON allows" in response["error"]


@pytest.mark.parametrize("text", ['{"v": NaN}', '{"v": -Infinity}', '{"v": 1e400}'])
def test_stored_non_finite_numbers_are_refused(reader: ModuleType, jail: Path, text: str) -> None:
    (jail / "documents").mkdir()
    (jail / "documents" / "nan.json").write_text(text)
    with pytest.raises(StorageError, match="is not valid JSON"):
        reader.handler({"key": "documents/nan.json"}, FakeContext())


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE): neither is ever missing."""
    if _libc.renameat2(_AT_FDCWD, bytes(a), _AT_FDCWD, bytes(b), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(a))


class Swapper:
    """Swaps the real directory at `path` with a symlink to `target`, as fast as it can, in a
    thread. The real directory stays inside the root (at `path`, or beside it as `<name>-link`
    while the symlink stands at `path`), and is back at `path` when the thread stops."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.link = path, path.with_name(path.name + "-link")
        self.link.symlink_to(target, target_is_directory=True)
        self.swaps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            exchange(self.path, self.link)  # the symlink stands at `path`
            exchange(self.path, self.link)  # the real directory is back
            self.swaps += 1

    def __enter__(self) -> Swapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        assert stat.S_ISDIR(self.path.lstat().st_mode)
        self.link.unlink()


def race(attempt: Callable[[], None], reached: Callable[[], bool], counts: Callable[[], object]) -> None:
    """Run ``attempt`` until ``reached()``: whatever the machine's speed, the race has happened."""
    deadline = time.monotonic() + RACE_LIMIT_SECONDS
    while not reached():
        assert time.monotonic() < deadline, f"the race never reached its counts: {counts()}"
        attempt()


@pytest.mark.parametrize("swapped", [1, 4], ids=["documents", "day"])
def test_reader_and_listing_race_directory_swaps(
    reader: ModuleType, jail: Path, ground: Path, swapped: int
) -> None:
    day = jail / "documents" / "2026" / "11" / "27"
    day.mkdir(parents=True)
    (day / "a.json").write_text('{"ok": true}')
    parts = ("documents", "2026", "11", "27")[:swapped]
    # The symlink leads to a tree shaped like the real one, full of secrets.
    target = ground / "outside" if swapped == 1 else ground / "outside" / "2026" / "11" / "27"
    statuses: dict[int, int] = {}
    leaks: list[Any] = []

    def read_and_list() -> None:
        for event in ({"key": "documents/2026/11/27/a.json"}, {"prefix": "documents", "limit": 10}):
            response = reader.handler(event, FakeContext())
            statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
            text = json.dumps(response)
            if SECRET in text or "only-outside" in text:
                leaks.append(response)

    with Swapper(jail.joinpath(*parts), target) as swapper:
        # Both outcomes must have happened: reads that found the directory, reads that met the swap.
        race(
            read_and_list,
            lambda: swapper.swaps > 50 and statuses.get(200, 0) > 50 and statuses.get(409, 0) > 0,
            lambda: (swapper.swaps, statuses),
        )
    assert leaks == []
    assert set(statuses) <= {200, 404, 409}, statuses


@pytest.mark.parametrize("swapped", [1, 4], ids=["documents", "day"])
def test_writer_races_directory_swaps(
    writer: ModuleType, jail: Path, ground: Path, swapped: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = ("documents", *today())
    jail.joinpath(*parts).mkdir(parents=True)
    before = outside_snapshot(ground)
    committed: list[str] = []
    refused = 0

    def write() -> None:
        nonlocal refused
        doc_id = f"doc-{len(committed) + refused}"
        if len(committed) % 2:
            tree.forget_kept()  # as in a new execution environment: walk from the root
        try:
            response = writer.handler({"id": doc_id, "n": len(committed)}, FakeContext())
        except (UnsafePathError, StorageError) as exc:
            # A walk met the symlink, or the directory was swapped away at both checks (ESTALE):
            # either way the event is retried, and nothing was committed outside the root.
            assert isinstance(exc, UnsafePathError) or exc.errno == errno.ESTALE, exc
            refused += 1
            return
        assert response["statusCode"] == 200, response
        committed.append(response["key"])

    moved = 0
    real_still_at = tree.still_at

    def counting_still_at(*args: Any) -> bool:
        nonlocal moved
        at_key = real_still_at(*args)
        moved += not at_key
        return at_key

    monkeypatch.setattr(tree, "still_at", counting_still_at)
    with Swapper(jail.joinpath(*parts[:swapped]), ground / "outside") as swapper:
        # Commits that met no swap, commits refused at a walk, and kept directories found swapped
        # away after a rename (the file brought back to the key, or the commit refused) all happened.
        race(
            write,
            lambda: swapper.swaps > 50 and len(committed) > 50 and refused > 0 and moved > 0,
            lambda: (swapper.swaps, len(committed), refused, moved),
        )
    # Not one byte outside the root, and every answered commit is where it says, complete.
    assert outside_snapshot(ground) == before
    for key in committed:
        document = json.loads((jail / key).read_text())
        assert document["id"] == key.rsplit("/", 1)[1].removesuffix(".json")
    assert list((jail / ".staging").iterdir()) == []
