"""The walking primitives every reader, writer, listing and sweep goes through, on a plain directory
and on a real tmpfs: symlinks and swaps are never followed, non-regular files are never opened."""

from __future__ import annotations

import os
import socket
import stat
import threading
from typing import TYPE_CHECKING

import pytest

from s3files_store import tree
from s3files_store.exceptions import TooLargeError, UnsafePathError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = b'{"secret": "outside the root"}'


@pytest.fixture
def root(ground: Path) -> Path:
    """A mount root inside `ground`, with a secret beside it and a hidden directory inside it."""
    (ground / "outside").mkdir()
    (ground / "outside" / "a.json").write_bytes(SECRET)
    root = ground / "s3data"
    (root / "documents" / "2026").mkdir(parents=True)
    (root / "documents" / "2026" / "a.json").write_bytes(b"{}")
    (root / ".s3files-lost+found-fs-1").mkdir()
    (root / ".s3files-lost+found-fs-1" / "a.json").write_bytes(SECRET)
    return root


@pytest.fixture
def root_fd(root: Path) -> Iterator[int]:
    fd = tree.open_root(root)
    yield fd
    os.close(fd)


def names(fd: int) -> list[str]:
    return sorted(os.listdir(fd))


def test_walks_real_directories(root_fd: int) -> None:
    fd = tree.open_dir(root_fd, ("documents", "2026"))
    try:
        assert names(fd) == ["a.json"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("target", ["../outside", ".s3files-lost+found-fs-1", ".", "/"])
@pytest.mark.parametrize("where", [("documents",), ("documents", "2026")])
def test_symlinked_directory_is_refused_and_named(
    root: Path, root_fd: int, target: str, where: tuple[str, ...]
) -> None:
    link = root.joinpath(*where)
    link.rename(link.with_name("moved"))
    link.symlink_to(target if not target.startswith("..") else root.parent / "outside")
    with pytest.raises(UnsafePathError, match=f"{'/'.join(where)} on the mount is a symlink.*Remove it"):
        tree.open_dir(root_fd, ("documents", "2026"), create=True)


def test_file_where_a_directory_should_be_is_refused(root: Path, root_fd: int) -> None:
    with pytest.raises(UnsafePathError, match=r"2026/a\.json on the mount is a regular file, not a dir"):
        tree.open_dir(root_fd, ("documents", "2026", "a.json"))


def test_missing_directory_without_create(root_fd: int) -> None:
    with pytest.raises(FileNotFoundError):
        tree.open_dir(root_fd, ("documents", "1999"))


def test_create_makes_missing_directories_0750(root: Path, root_fd: int) -> None:
    os.close(tree.open_dir(root_fd, ("documents", "2027", "01"), create=True))
    created = root / "documents" / "2027" / "01"
    assert created.is_dir()
    assert stat.S_IMODE(created.stat().st_mode) & 0o777 == 0o750 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_create_never_makes_anything_outside(root: Path, root_fd: int) -> None:
    (root / "documents" / "2026").rename(root / "documents" / "real-2026")
    (root / "documents" / "2026").symlink_to(root.parent / "outside")
    with pytest.raises(UnsafePathError):
        tree.open_dir(root_fd, ("documents", "2026", "12"), create=True)
    assert sorted(p.name for p in (root.parent / "outside").iterdir()) == ["a.json"]


def test_open_file_reads_a_regular_file(root: Path, root_fd: int) -> None:
    dir_fd = tree.open_dir(root_fd, ("documents", "2026"))
    fd, size = tree.open_file(dir_fd, "a.json", "documents/2026/a.json", 100)
    os.close(dir_fd)
    with os.fdopen(fd, "rb") as file:
        assert (file.read(), size) == (b"{}", 2)


def _plant_fifo(path: Path) -> None:
    os.mkfifo(path)


def _plant_device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null


def _plant_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))


def _plant_symlink(path: Path) -> None:
    path.symlink_to(path.parent.parent.parent.parent / "outside" / "a.json")


@pytest.mark.parametrize(
    ("plant", "kind"),
    [
        (_plant_fifo, "a FIFO, not a regular file"),
        (_plant_device, "a device, not a regular file"),
        (_plant_socket, "a socket, not a regular file"),  # ENXIO: refused at open, then named
        (_plant_symlink, "a symlink, not a regular file"),
    ],
    ids=["fifo", "device", "socket", "symlink"],
)
def test_non_regular_files_are_refused_without_blocking(
    root: Path, root_fd: int, plant: object, kind: str
) -> None:
    path = root / "documents" / "2026" / "b.json"
    plant(path)  # type: ignore[operator]
    dir_fd = tree.open_dir(root_fd, ("documents", "2026"))
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            tree.open_file(dir_fd, "b.json", "documents/2026/b.json", 100)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(5)
    os.close(dir_fd)
    assert not worker.is_alive(), "open_file blocked on a planted file"
    assert len(outcome) == 1 and isinstance(outcome[0], UnsafePathError), outcome
    assert kind in str(outcome[0]) and "documents/2026/b.json" in str(outcome[0])


def test_directory_is_not_a_file(root_fd: int) -> None:
    dir_fd = tree.open_dir(root_fd, ("documents",))
    with pytest.raises(IsADirectoryError):
        tree.open_file(dir_fd, "2026", "documents/2026", 100)
    os.close(dir_fd)


def test_hard_linked_file_is_refused_and_named(root: Path, root_fd: int) -> None:
    """A second name for a file outside the root would read it from inside: never opened."""
    os.link(root.parent / "outside" / "a.json", root / "documents" / "2026" / "b.json")
    dir_fd = tree.open_dir(root_fd, ("documents", "2026"))
    with pytest.raises(
        UnsafePathError, match=r"documents/2026/b\.json on the mount has 2 hard links.*remove"
    ):
        tree.open_file(dir_fd, "b.json", "documents/2026/b.json", 100)
    fd, _ = tree.open_file(dir_fd, "a.json", "documents/2026/a.json", 100)  # one link: read
    os.close(fd)
    os.close(dir_fd)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFREG, "a regular file"),
        (stat.S_IFDIR, "a directory"),
        (stat.S_IFIFO, "a FIFO"),
        (stat.S_IFSOCK, "a socket"),
        (stat.S_IFLNK, "a symlink"),
        (stat.S_IFCHR, "a device"),
        (stat.S_IFBLK, "a device"),
    ],
)
def test_kinds_are_named(mode: int, kind: str) -> None:
    assert tree.kind(mode | 0o644) == kind


def test_size_cap_is_checked_before_reading(root: Path, root_fd: int) -> None:
    (root / "documents" / "big.json").write_bytes(b"x" * 101)
    dir_fd = tree.open_dir(root_fd, ("documents",))
    with pytest.raises(TooLargeError, match=r"documents/big\.json is 101 bytes, more than the 100"):
        tree.open_file(dir_fd, "big.json", "documents/big.json", 100)
    os.close(dir_fd)


def test_kept_descriptors_are_per_thread_and_forgotten_on_demand(root: Path) -> None:
    parts = ("documents", "2026")
    here = tree.borrow_dir(root, parts)
    tree.return_dir(root, parts, here)
    again = tree.borrow_dir(root, parts)
    assert again == here
    tree.return_dir(root, parts, again)
    elsewhere: list[int] = []

    def borrow_and_return() -> None:
        elsewhere.append(tree.borrow_dir(root, parts))
        tree.return_dir(root, parts, elsewhere[0])

    thread = threading.Thread(target=borrow_and_return)
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] != here
    tree.forget_kept()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(here)


def test_a_borrowed_descriptor_outlives_forget_and_eviction(root: Path) -> None:
    """Nothing else in the thread (a nested commit, a failure, the cap on kept ones) closes it."""
    borrowed = tree.borrow_dir(root, ("documents",))
    for n in range(100):  # past the cap: the kept ones are closed, never the borrowed one
        tree.return_dir(root, (f"d{n}",), tree.borrow_dir(root, (f"d{n}",)))
    tree.forget_kept()
    assert names(borrowed) == ["2026"]
    # Handed back while another is kept under the same name: the extra one is closed, not leaked.
    kept = tree.borrow_dir(root, ("documents",))
    tree.return_dir(root, ("documents",), kept)
    tree.return_dir(root, ("documents",), borrowed)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(borrowed)
    assert tree.borrow_dir(root, ("documents",)) == kept
    os.close(kept)


def test_kept_descriptor_follows_its_directory_not_a_swap(root: Path) -> None:
    fd = tree.borrow_dir(root, ("documents", "2026"))
    (root / "documents" / "2026").rename(root / "documents" / "moved")
    (root / "documents" / "2026").symlink_to(root.parent / "outside")
    # Still the directory it was opened on (now inside the root as "moved"), never the symlink.
    assert names(fd) == ["a.json"]
    assert os.fstat(fd).st_ino == (root / "documents" / "moved").stat().st_ino
    os.close(fd)
