"""The streaming atomic write on real directories and real file systems: chunking, kernel copies and
their fallbacks, checksums, failures inside and outside the block, ENOSPC on a real tmpfs, the
deadline, nested commits, and resident memory while 1 GiB streams."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from testkit import REPO

from s3files_store import stream
from s3files_store.commit import commit
from s3files_store.exceptions import DeadlineError, StorageError, UnsafePathError
from s3files_store.stream import CHUNK_BYTES, atomic_writer, commit_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MIB = 1024 * 1024
KEY = "exports/2026/12/01/big.bin"
OLD = b"the previous version"
real_write = os.write


def pattern(size: int, seed: str = "s") -> bytes:
    block = hashlib.sha256(seed.encode()).digest() * (MIB // 32)
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before, "a stream left a thread running"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[tuple[str, int]]]:
    """Record (syscall, bytes) for the os functions named, calling the real ones."""
    calls: list[tuple[str, int]] = []

    def record(*names: str) -> list[tuple[str, int]]:
        for name in names:
            real = getattr(os, name)

            def spy(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
                result = _real(*args, **kwargs)
                calls.append((_name, len(result) if isinstance(result, bytes) else result or 0))
                return result

            monkeypatch.setattr(os, name, spy)
        return calls

    return record


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(pattern(10 * MIB + 12345))
    return path


def assert_committed(root: Path, data: bytes, result: Any, key: str = KEY) -> None:
    assert (root / key).read_bytes() == data
    assert (result.key, result.bytes, result.sha256) == (key, len(data), hashlib.sha256(data).hexdigest())
    assert result.path == str(root / key)
    assert list((root / ".staging").iterdir()) == []


def test_small_writes_are_gathered_into_whole_chunks(
    tmp_path: Path, recorded: Callable[..., list[tuple[str, int]]]
) -> None:
    data = pattern(3 * CHUNK_BYTES + 777)
    writes = recorded("write")
    with atomic_writer(tmp_path, KEY) as out:
        for start in range(0, len(data), 1000):
            out.write(data[start : start + 1000])
        assert out.tell() == len(data)
    sizes = [size for name, size in writes]
    # S3 Files bills every data operation as at least 32 KiB: only the last write may be small.
    assert sizes == [CHUNK_BYTES] * 3 + [777]
    assert_committed(tmp_path, data, out.result)


class GatedHash:
    """sha256 whose updates off the calling thread wait for ``gate``; counts the bytes hashed."""

    def __init__(self, gate: threading.Event) -> None:
        self.inner, self.gate, self.hashed = hashlib.sha256(), gate, 0

    def update(self, data: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            assert self.gate.wait(60), "the test never opened the gate"
        self.inner.update(data)
        self.hashed += len(memoryview(data))

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[GatedHash]]:
    """The stream's hashes, held at a gate: open it to let the worker thread hash."""
    gate, made = threading.Event(), []

    def sha256() -> GatedHash:
        made.append(GatedHash(gate))
        return made[-1]

    monkeypatch.setattr(stream, "hashlib", type("hashlib", (), {"sha256": staticmethod(sha256)}))
    return gate, made


def test_bytes_are_hashed_behind_the_writes(
    tmp_path: Path, gated: tuple[threading.Event, list[GatedHash]]
) -> None:
    """Memory nobody can change (bytes) is written at once and hashed later, up to the fsync."""
    gate, made = gated
    data = pattern(3 * CHUNK_BYTES)
    with atomic_writer(tmp_path, KEY) as out:
        out.write(data)  # returns with the worker held at the gate: nothing waited for the hashing
        assert (made[0].hashed, out.tell()) == (0, len(data))
        (staged,) = (tmp_path / ".staging").iterdir()
        assert staged.stat().st_size == len(data)
        gate.set()
    assert_committed(tmp_path, data, out.result)


def test_a_buffer_the_caller_may_reuse_is_hashed_before_write_returns(
    tmp_path: Path, gated: tuple[threading.Event, list[GatedHash]]
) -> None:
    gate, made = gated
    gate.set()
    buffer, written = bytearray(2 * CHUNK_BYTES), b""
    with atomic_writer(tmp_path, KEY) as out:
        for seed in "abc":
            buffer[:] = pattern(len(buffer), seed)  # the caller refills its buffer after each write
            out.write(buffer)
            assert made[0].hashed == len(written) + len(buffer), "write() returned before the hashing"
            written += bytes(buffer)
    assert_committed(tmp_path, written, out.result)


def test_one_large_write_and_an_empty_stream(tmp_path: Path) -> None:
    data = pattern(2 * CHUNK_BYTES + 5)
    with atomic_writer(tmp_path, KEY) as out:
        assert out.write(memoryview(data)) == len(data)
    assert_committed(tmp_path, data, out.result)
    with atomic_writer(tmp_path, "empty.bin") as out:
        pass
    assert_committed(tmp_path, b"", out.result, "empty.bin")


def test_closing_the_file_inside_the_block_still_commits(tmp_path: Path) -> None:
    with atomic_writer(tmp_path, KEY) as out:
        out.write(b"all of it")
        out.close()
        with pytest.raises(ValueError, match="closed file"):
            out.write(b" and more")
    assert_committed(tmp_path, b"all of it", out.result)


def test_streams_share_commits_protocol(
    tmp_path: Path, recorded: Callable[..., list[tuple[str, int]]]
) -> None:
    """The same operations in the same order as commit(): one protocol, not two."""
    commit(tmp_path, KEY, OLD)  # creates the directories, so both runs below are warm
    calls = recorded("open", "write", "fsync", "close", "rename", "unlink", "mkdir")
    commit(tmp_path, KEY, b"x" * 1024)
    by_commit = [name for name, _ in calls]
    calls.clear()
    with atomic_writer(tmp_path, KEY) as out:
        out.write(b"y" * 1024)
    assert [name for name, _ in calls] == by_commit == ["open", "write", "fsync", "close", "rename", "fsync"]


@pytest.mark.parametrize("how", ["path", "str", "file"])
def test_copy_from_a_regular_file_uses_the_kernel(
    tmp_path: Path, source: Path, recorded: Callable[..., list[tuple[str, int]]], how: str
) -> None:
    data = source.read_bytes()
    calls = recorded("copy_file_range", "write")
    if how == "file":
        with source.open("rb") as file:
            result = commit_file(tmp_path, KEY, file)
            assert file.tell() == len(data)
    else:
        result = commit_file(tmp_path, KEY, source if how == "path" else str(source))
    assert_committed(tmp_path, data, result)
    copies = [size for name, size in calls if name == "copy_file_range"]
    assert sum(copies) == len(data) and max(copies) == CHUNK_BYTES
    assert not [name for name, _ in calls if name == "write"]


def test_copy_from_starts_at_the_file_position(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    with source.open("rb") as file, atomic_writer(tmp_path, KEY) as out:
        out.write(file.read(100))  # buffered, so the descriptor's offset is far ahead of tell()
        out.write(b"+")
        assert out.copy_from(file) == len(data) - 100
        out.write(b"!")
    assert_committed(tmp_path, data[:100] + b"+" + data[100:] + b"!", out.result)


@pytest.mark.parametrize(
    ("broken", "used"),
    [(["copy_file_range"], "sendfile"), (["copy_file_range", "sendfile"], "pread")],
    ids=["sendfile", "pread-write"],
)
def test_kernel_copy_falls_back_where_it_does_not_apply(
    tmp_path: Path,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    recorded: Callable[..., list[tuple[str, int]]],
    broken: list[str],
    used: str,
) -> None:
    """EXDEV (another file system, Linux >= 5.19) and EINVAL make the copy try the next routine."""
    for name, code in zip(broken, (errno.EXDEV, errno.EINVAL), strict=False):

        def refuse(*args: Any, _code: int = code) -> int:
            raise OSError(_code, os.strerror(_code))

        monkeypatch.setattr(os, name, refuse)
    calls = recorded(used)
    result = commit_file(tmp_path, KEY, source)
    assert_committed(tmp_path, source.read_bytes(), result)
    assert sum(size for _, size in calls) == source.stat().st_size


@pytest.mark.parametrize("kind", ["pipe", "bytesio"])
def test_copy_from_other_sources_reads_chunks(tmp_path: Path, kind: str) -> None:
    data = pattern(2 * CHUNK_BYTES + 999)
    if kind == "bytesio":
        result = commit_file(tmp_path, KEY, io.BytesIO(data))
    else:
        read_fd, write_fd = os.pipe()
        feeder = threading.Thread(target=lambda: (os.write(write_fd, data), os.close(write_fd)))
        feeder.start()
        with os.fdopen(read_fd, "rb") as pipe:
            result = commit_file(tmp_path, KEY, pipe)
        feeder.join()
    assert_committed(tmp_path, data, result)


def test_an_exception_in_the_block_leaves_the_previous_version(tmp_path: Path, source: Path) -> None:
    commit(tmp_path, KEY, OLD)
    with pytest.raises(RuntimeError, match="the caller's own failure"), atomic_writer(tmp_path, KEY) as out:
        out.write(pattern(CHUNK_BYTES + 1))
        out.copy_from(source)
        raise RuntimeError("the caller's own failure")
    assert (tmp_path / KEY).read_bytes() == OLD
    assert list((tmp_path / ".staging").iterdir()) == []
    with pytest.raises(ValueError, match="closed file"):
        out.write(b"more")
    with pytest.raises(ValueError, match="not committed"):
        _ = out.result


def test_a_failure_the_caller_caught_is_never_committed(tmpfs: Callable[..., Path]) -> None:
    root = tmpfs("2m")
    commit(root, KEY, OLD)
    with (
        pytest.raises(StorageError, match="was not committed: a write failed before"),
        atomic_writer(root, KEY) as out,
        contextlib.suppress(StorageError),  # the caller swallows ENOSPC: the block exits cleanly
    ):
        out.write(pattern(4 * MIB))
    assert (root / KEY).read_bytes() == OLD
    assert list((root / ".staging").iterdir()) == []


@pytest.mark.parametrize("how", ["write", "copy_from"])
def test_real_full_file_system_mid_stream(tmpfs: Callable[..., Path], tmp_path: Path, how: str) -> None:
    """ENOSPC after megabytes went through: clean failure, staging file removed, old file intact."""
    root = tmpfs("8m")
    commit(root, KEY, OLD)
    source = tmp_path / "big.bin"  # on the disk: a kernel copy across file systems
    source.write_bytes(pattern(32 * MIB))
    with pytest.raises(StorageError, match="no space left") as caught, atomic_writer(root, KEY) as out:
        if how == "write":
            with source.open("rb") as file:
                while chunk := file.read(MIB):
                    out.write(chunk)
        else:
            out.copy_from(source)
    assert caught.value.errno == errno.ENOSPC
    assert (root / KEY).read_bytes() == OLD
    assert list((root / ".staging").iterdir()) == []
    assert os.statvfs(root).f_bfree * os.statvfs(root).f_frsize > 7 * MIB  # the space came back


class SlowSource(io.RawIOBase):
    """A never-ending source that yields one MiB every `pause` seconds (a slow network, a slow
    decompressor)."""

    def __init__(self, pause: float) -> None:
        self.pause = pause

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        time.sleep(self.pause)
        size = min(len(buffer), MIB)
        buffer[:size] = b"s" * size
        return size


def test_the_deadline_stops_a_slow_stream_before_the_function_times_out(tmp_path: Path) -> None:
    commit(tmp_path, KEY, OLD)
    started = time.monotonic()
    deadline = started + 1.5  # the function's timeout, as get_remaining_time_in_millis sees it

    def remaining_ms() -> int:
        return int((deadline - time.monotonic()) * 1000)

    with (
        pytest.raises(DeadlineError) as caught,
        atomic_writer(tmp_path, KEY, remaining_ms=remaining_ms, margin_ms=500) as out,
    ):
        out.copy_from(io.BufferedReader(SlowSource(0.05)))
    assert time.monotonic() < deadline, "it ran into the timeout instead of stopping before it"
    message = str(caught.value)
    assert f"stopped writing {KEY} after " in message and "Timeout" in message and "smaller input" in message
    assert caught.value.status_code == 503
    assert (tmp_path / KEY).read_bytes() == OLD
    assert list((tmp_path / ".staging").iterdir()) == []


def test_the_deadline_stops_a_kernel_copy_and_its_hashing(tmp_path: Path, source: Path) -> None:
    calls = iter([60_000, 60_000] + [100] * 100)  # two chunks, then the deadline is near
    threads = threading.active_count()
    with pytest.raises(DeadlineError, match=f"after {2 * CHUNK_BYTES:,} bytes"):
        commit_file(tmp_path, KEY, source, remaining_ms=lambda: next(calls), margin_ms=3000)
    assert not (tmp_path / KEY).exists()
    assert list((tmp_path / ".staging").iterdir()) == []
    assert threading.active_count() == threads, "the hashing thread outlived the stream"


@pytest.mark.parametrize("when", ["hashing-over-copy-running", "copy-over-hashing-waiting"])
def test_a_source_that_changes_during_the_copy_is_refused(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The interleaving is forced with events, not left to the threads: the source is appended to
    (1) after its hashing is over, while the copy still runs (the status must be taken after the
    copy too), or (2) once the copy is over, before its hashing starts."""
    real_copy, real_hash = os.copy_file_range, stream._hash_range
    hashing_over, changed = threading.Event(), threading.Event()
    size = source.stat().st_size  # three chunks: the change comes after the first, or the last
    change_after = 1 if when == "hashing-over-copy-running" else 3
    copies: list[int] = []

    def hash_range(*args: Any) -> int:
        if when == "copy-over-hashing-waiting":
            assert changed.wait(60), "the copy never reached its end"
        done = real_hash(*args)
        hashing_over.set()
        return done

    def copy_file_range(*args: Any) -> int:
        copied = real_copy(*args)
        copies.append(copied)
        if len(copies) == change_after:
            if when == "hashing-over-copy-running":
                assert hashing_over.wait(60), "the hashing never ended"
            with source.open("ab") as file:
                file.write(b"appended by someone else")
            changed.set()
        return copied

    monkeypatch.setattr(stream, "_hash_range", hash_range)
    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    with pytest.raises(StorageError, match="changed while it was copied"):
        commit_file(tmp_path, KEY, source)
    assert changed.is_set() and hashing_over.is_set(), "the change was not made where the test says"
    assert len(copies) == 3 and sum(copies) == size, "the copy did not go on past the change"
    assert not (tmp_path / KEY).exists()
    assert list((tmp_path / ".staging").iterdir()) == []


def test_commits_nested_in_a_stream_never_close_its_directories(tmp_path: Path) -> None:
    """Other commits in the same thread (more directories than are kept, and a failed one, which
    forgets every kept descriptor) while a stream is open."""
    (tmp_path / "blocked").write_text("a file where a directory is expected")
    with atomic_writer(tmp_path, KEY) as out, atomic_writer(tmp_path, "other/side.bin") as side:
        out.write(b"first half ")
        for n in range(100):
            commit(tmp_path, f"many/d{n}/f.json", b"{}")
        with pytest.raises(UnsafePathError):
            commit(tmp_path, "blocked/f.json", b"{}")
        side.write(b"side")
        out.write(b"second half")
    assert_committed(tmp_path, b"first half second half", out.result)
    assert (tmp_path / "other" / "side.bin").read_bytes() == b"side"
    assert len(list((tmp_path / "many").iterdir())) == 100


def test_keys_outside_the_root_are_refused(tmp_path: Path) -> None:
    for key in ("../escape.bin", "/etc/passwd", ".staging/x.tmp"):
        with pytest.raises(ValueError, match="relative to the root"), atomic_writer(tmp_path, key):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []


RSS_CHILD = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from s3files_store import stream
from s3files_store.stream import CHUNK_BYTES, atomic_writer, commit_file

def status(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024

root, how, size = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
block = os.urandom(CHUNK_BYTES // 4)  # the caller's own buffer, counted before the write
commit_file(root, "warm.bin", Path(sys.argv[1]) / "s3files_store" / "stream.py")
Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
before = status("VmRSS")
if how == "write":
    with atomic_writer(root, "big.bin") as out:
        for _ in range(size // len(block)):
            out.write(block)
    result = out.result
else:
    result = commit_file(root, "big.bin", sys.argv[5])
print(json.dumps({"before": before, "peak": status("VmHWM"), "bytes": result.bytes}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["write", "copy_from"])
def test_one_gib_streams_in_bounded_memory(tmp_path: Path, how: str) -> None:
    """Measured, not assumed: peak resident memory during a 1 GiB streaming commit, in a fresh
    process, against its resident memory just before."""
    size = 1024 * MIB
    root = tmp_path / "root"
    root.mkdir()
    source = tmp_path / "source.bin"
    if how == "copy_from":
        with source.open("wb") as file:
            block = os.urandom(MIB)
            for _ in range(size // MIB):
                file.write(block)
    args = [str(REPO / "layers" / "shared"), str(root), how, str(size), str(source)]
    done = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, *args], capture_output=True, text=True, check=True, timeout=600
    )
    figures = json.loads(done.stdout)
    growth = figures["peak"] - figures["before"]
    print(
        f"{how}: RSS {figures['before'] / MIB:.1f} MiB before, peak growth {growth / MIB:.1f} MiB for 1 GiB"
    )
    assert figures["bytes"] == size == (root / "big.bin").stat().st_size
    assert growth < 64 * MIB, f"resident memory grew by {growth / MIB:.1f} MiB while streaming 1 GiB"
