"""A warm environment keeps directory descriptors between commits; other clients move directories.

Each test moves a directory at one precise point of a commit (between two commits, before the
staging file is made, during the writes, between the rename and its check), on a plain directory
and on a real tmpfs, and proves that a commit that answers success has its bytes at ``root/key`` as
the path stands, that no staged byte went to a moved ``.staging``, and that every interleaving the
test is about actually happened (the hooks count their moves).
"""

from __future__ import annotations

import errno
import io
import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from testkit import FakeContext

from s3files_store import tree
from s3files_store.archive import extract_zip
from s3files_store.commit import commit
from s3files_store.config import Config
from s3files_store.exceptions import StorageError, UnsafePathError
from s3files_store.stream import CHUNK_BYTES, atomic_writer

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

DAY = ("documents", "2026", "12", "02")
KEY = "/".join((*DAY, "doc.json"))

real_write = os.write
real_rename = os.rename


@pytest.fixture
def root(ground: Path) -> Path:
    (ground / "root").mkdir()
    (ground / "outside").mkdir()
    return ground / "root"


def contents(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


# Where each move takes a directory: out of the root (another access point's view), or into a
# hidden directory of the root (unreachable by any key).
DESTINATIONS = {"out-of-the-root": "../outside/moved", "into-a-hidden-directory": ".hidden/moved"}


def move(root: Path, parts: tuple[str, ...], where: str) -> Path:
    target = (root / DESTINATIONS[where]).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    root.joinpath(*parts).rename(target)
    return target


@pytest.mark.parametrize("where", DESTINATIONS)
@pytest.mark.parametrize("moved", [DAY, DAY[:1], (".staging",)], ids=["day", "prefix", "staging"])
def test_a_directory_moved_between_two_warm_commits(root: Path, moved: tuple[str, ...], where: str) -> None:
    commit(root, KEY, b"first")  # warm: the root, .staging and the day directory are kept
    target = move(root, moved, where)
    staged_in: list[str] = []

    def recording_write(fd: int, data: Any) -> int:
        staged_in.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        return real_write(fd, data)

    os.write = recording_write
    try:
        result = commit(root, KEY, b"second")
    finally:
        os.write = real_write
    assert (root / KEY).read_bytes() == b"second"
    assert result.path == str(root / KEY)
    # The staged bytes went only to the .staging at its name, never to the moved one.
    assert staged_in and all(path.startswith(str(root / ".staging") + "/") for path in staged_in), staged_in
    # The moved directory holds what it held: nothing new was staged or committed in it.
    expected = [] if moved == (".staging",) else ["/".join((*DAY[len(moved) :], "doc.json"))]
    assert contents(target) == expected
    assert [p.name for p in (root / ".staging").iterdir()] == []


def test_a_day_directory_replaced_by_another_gets_the_commit(root: Path) -> None:
    commit(root, KEY, b"first")
    day = root.joinpath(*DAY)
    move(root, DAY, "out-of-the-root")
    day.mkdir()
    (day / "other.json").write_bytes(b"{}")
    commit(root, KEY, b"second")
    assert sorted(p.name for p in day.iterdir()) == ["doc.json", "other.json"]
    assert (day / "doc.json").read_bytes() == b"second"


def test_a_day_directory_moved_during_the_writes(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Moved after the staging file was made and written, before the rename: checked, walked afresh."""
    commit(root, KEY, b"first")
    moves: list[Path] = []
    real_fsync = os.fsync

    def moving_fsync(fd: int) -> None:
        real_fsync(fd)
        if not moves:  # the staging file's fsync: every byte is written, the rename comes next
            moves.append(move(root, DAY, "out-of-the-root"))

    monkeypatch.setattr(os, "fsync", moving_fsync)
    result = commit(root, KEY, b"second")
    monkeypatch.undo()
    assert len(moves) == 1
    assert (root / KEY).read_bytes() == b"second" and result.path == str(root / KEY)
    # The moved directory's own document was neither replaced nor taken.
    assert contents(moves[0]) == ["doc.json"] and (moves[0] / "doc.json").read_bytes() == b"first"
    assert list((root / ".staging").iterdir()) == []
    commit(root, KEY, b"third")  # the kept state was dropped: the next commit is at the key too
    assert (root / KEY).read_bytes() == b"third" and (moves[0] / "doc.json").read_bytes() == b"first"


def test_a_directory_that_keeps_moving_fails_the_commit(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(root, KEY, b"first")
    moves = 0
    real_still_at = tree.still_at

    def fleeing_still_at(at_root: Path, parts: tuple[str, ...], fd: int) -> bool:
        nonlocal moves
        if parts == DAY:  # moved again right after every walk to it
            moves += 1
            root.joinpath(*DAY).rename(root.parent / "outside" / f"moved-{moves}")
        return real_still_at(at_root, parts, fd)

    monkeypatch.setattr(tree, "still_at", fleeing_still_at)
    with pytest.raises(StorageError, match="a directory moved or replaced by another client") as caught:
        commit(root, KEY, b"second")
    assert caught.value.errno == errno.ESTALE and moves == 2
    assert not (root / KEY).exists() and list((root / ".staging").iterdir()) == []
    outside = root.parent / "outside"
    assert (
        contents(outside) == ["moved-1/doc.json"]
        and (outside / "moved-1" / "doc.json").read_bytes() == b"first"
    )


def test_a_directory_at_the_document_name_is_named(root: Path) -> None:
    root.joinpath(KEY).mkdir(parents=True)
    with pytest.raises(UnsafePathError, match=r"documents/2026/12/02/doc\.json on the mount is a directory"):
        commit(root, KEY, b"x")
    assert list((root / ".staging").iterdir()) == []


def test_a_stream_whose_directory_moves_between_chunks(root: Path) -> None:
    commit(root, KEY, b"first")
    moved: list[Path] = []
    with atomic_writer(root, KEY) as out:
        out.write(b"a" * CHUNK_BYTES)
        moved.append(move(root, DAY, "into-a-hidden-directory"))
        out.write(b"b" * CHUNK_BYTES)
    assert (root / KEY).stat().st_size == 2 * CHUNK_BYTES
    assert out.result.path == str(root / KEY)
    assert (moved[0] / "doc.json").read_bytes() == b"first"


def test_an_extraction_whose_destination_moves_between_members(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(3):
            archive.writestr(f"m{n}.txt", f"member {n}")
    (root / "uploads").mkdir()
    (root / "uploads" / "a.zip").write_bytes(buffer.getvalue())
    config = Config(mount_root=root)
    moves: list[Path] = []

    def rename(src: Any, dst: Any, **kwargs: Any) -> None:
        real_rename(src, dst, **kwargs)
        if dst == "m0.txt":  # the first member is committed: the destination is moved away
            moves.append(move(root, ("extracted",), "out-of-the-root"))

    monkeypatch.setattr(os, "rename", rename)
    extraction = extract_zip("uploads/a.zip", "extracted/a", config, lambda: 60_000)
    monkeypatch.undo()
    assert len(moves) == 1 and len(extraction.files) == 3
    assert contents(moves[0]) == ["a/m0.txt"]  # moved after its commit answered: the mover's now
    assert contents(root / "extracted") == ["a/m1.txt", "a/m2.txt"]
    assert all(f.path == str(root / "extracted" / "a" / f"m{n}.txt") for n, f in enumerate(extraction.files))


def test_the_writer_answers_where_the_document_is(
    writer: ModuleType, root: Path, mount_root_at: Callable[[Path], Path]
) -> None:
    mount_root_at(root)
    first = writer.handler({"id": "order-1"}, FakeContext())
    day = root.joinpath(*first["key"].split("/")[:-1])
    day.rename(root.parent / "outside" / "day")
    second = writer.handler({"id": "order-1", "v": 2}, FakeContext())
    assert second["statusCode"] == 200 and second["key"] == first["key"]
    assert second["committed_path"] == str(root / second["key"])
    assert json.loads((root / second["key"]).read_text()) == {"id": "order-1", "v": 2}
    assert datetime.now(UTC).strftime("%Y/%m/%d") in second["key"]
