"""Atomic writes of any size: stream into a staging file, commit on a clean exit.

:func:`atomic_writer` hands out an :class:`AtomicFile`, a writable binary file whose bytes go to a
staging file of :mod:`s3files_store.commit`: the same protocol and crash guarantees as ``commit()``.
A clean exit from the ``with`` block fsyncs it, renames it onto the key and fsyncs the directory.
An exception, a crash or a kill leaves nothing under the key (the previous file stays intact) and
at most one staging file, which the janitor removes.

- Bounded memory, whatever the size: small writes gather in one :data:`CHUNK_BYTES` buffer and the
  file is written in chunks of that size (S3 Files bills each data operation as at least 32 KiB,
  so chunks of 1 MiB or more are billed as the bytes they carry).
- :meth:`AtomicFile.copy_from` takes a path (e.g. in ``/tmp``) or a binary file object. A regular
  file is copied by the kernel (``copy_file_range``, else ``sendfile``, else ``pread``/``write``)
  while a worker thread at the lowest CPU priority hashes the source; any other source (a pipe, a
  zip member) is read in chunks.
- The sha256 of the bytes is computed while they stream, on a worker thread in parallel with the
  writes and the final fsync; :attr:`AtomicFile.result` reports it with the size. Chunks of
  ``bytes`` are hashed behind the writes (at most four chunks behind, their memory held until then);
  any other buffer is hashed before ``write()`` returns, as the caller may reuse it.
- Deadline: given ``remaining_ms`` (the Lambda context's ``get_remaining_time_in_millis``), each
  chunk first checks that at least ``margin_ms`` remain. If not, the write stops, the staging file
  is removed and :class:`DeadlineError` says how far it got and what to raise. The margin must cover
  the final fsync, rename and clean-up (DEADLINE_MARGIN_MS).

Example::

    with atomic_writer(root, "exports/2026/12/01/orders.csv",
                       remaining_ms=context.get_remaining_time_in_millis, margin_ms=3000) as out:
        out.copy_from("/tmp/orders.csv")
    out.result.bytes, out.result.sha256
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import io
import os
import stat
import threading
import time
from typing import IO, TYPE_CHECKING

from s3files_store.commit import Staging
from s3files_store.exceptions import DeadlineError, StorageError

if TYPE_CHECKING:
    from collections.abc import Buffer, Callable, Iterator
    from concurrent.futures import Future, ThreadPoolExecutor
    from pathlib import Path

    from s3files_store.commit import CommitResult

    Source = str | os.PathLike[str] | IO[bytes] | io.BufferedIOBase

# Every write to the staging file carries this much (but the last): >= 1 MiB for S3 Files billing.
CHUNK_BYTES = 4 * 1024 * 1024
# Below this, handing a chunk to the hashing thread costs more than hashing it inline.
_PARALLEL_HASH_BYTES = 1024 * 1024
# Chunks written but not yet hashed, at most: their memory is held until then.
_HASHING_AHEAD = 4
# Met before any byte moved, these mean "this kernel copy routine does not apply here".
_NO_KERNEL_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


@contextlib.contextmanager
def atomic_writer(
    root: Path, key: str, *, remaining_ms: Callable[[], int] | None = None, margin_ms: int = 0
) -> Iterator[AtomicFile]:
    """Stream a new version of ``root/key``: committed when the block exits cleanly, never partial.

    ``key`` is relative to the root and never hidden (check caller input with
    :func:`s3files_store.keys.validate_key`). Raises StorageError (ENOSPC, EIO...) or DeadlineError
    after removing the staging file; an exception from the block is re-raised after the same
    clean-up. The result is ``out.result`` after the block.
    """
    file = AtomicFile(Staging(root, key), remaining_ms, margin_ms)
    try:
        yield file
        file.commit()
    except BaseException:
        file.discard()  # does nothing once committed
        raise


def commit_file(
    root: Path,
    key: str,
    source: Source,
    *,
    remaining_ms: Callable[[], int] | None = None,
    margin_ms: int = 0,
) -> CommitResult:
    """Atomically replace ``root/key`` with everything in ``source`` (a local path or a binary file)."""
    with atomic_writer(root, key, remaining_ms=remaining_ms, margin_ms=margin_ms) as out:
        out.copy_from(source)
    return out.result


class AtomicFile(io.BufferedIOBase):
    """The writable binary file :func:`atomic_writer` hands out. ``flush()`` does nothing: the
    bytes become durable all at once, when the block exits."""

    def __init__(self, staging: Staging, remaining_ms: Callable[[], int] | None, margin_ms: int) -> None:
        super().__init__()
        self._staging = staging
        self._remaining_ms, self._margin_ms = remaining_ms, margin_ms
        self._hash = hashlib.sha256()
        self._buffer = memoryview(b"")  # allocated on a small write; a full one goes to be hashed
        self._fill = 0  # bytes waiting in the buffer
        self._hashing: collections.deque[Future[None]] = collections.deque()  # chunks queued, in order
        self._written = 0  # bytes handed to the staging file
        self._started = time.monotonic()
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()  # tells a kernel copy's hashing to give up
        self._pending: _KernelCopy | None = None  # the last kernel copy, until its hashing is checked
        self._failed: BaseException | None = None
        self._result: CommitResult | None = None

    @property
    def result(self) -> CommitResult:
        """What was committed (path, key, bytes, sha256), once the ``with`` block has exited."""
        if self._result is None:
            raise ValueError(f"{self._staging.key} is not committed: read .result after the with block")
        return self._result

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Bytes written so far."""
        return self._written + self._fill

    def write(self, data: Buffer, /) -> int:
        """Append every byte of ``data``; small writes are gathered into chunks.

        Whole chunks go straight from the caller's memory. Their hashing runs behind the writes
        when that memory cannot change (``bytes``); any other buffer is hashed by the time this
        returns, so the caller may reuse it.
        """
        view = memoryview(data).cast("B")
        size = len(view)
        with self._guard():
            while view:
                if not self._fill and len(view) >= CHUNK_BYTES:
                    whole = len(view) - len(view) % CHUNK_BYTES
                    self._emit(view[:whole], stable=type(view.obj) is bytes)
                    view = view[whole:]
                    continue
                if not self._buffer:
                    self._buffer = memoryview(bytearray(CHUNK_BYTES))
                take = min(len(view), CHUNK_BYTES - self._fill)
                self._buffer[self._fill : self._fill + take] = view[:take]
                self._fill += take
                view = view[take:]
                if self._fill == CHUNK_BYTES:
                    self._drain()
        return size

    def copy_from(self, source: Source) -> int:
        """Append everything in ``source`` from its current position; return the bytes copied.

        A path is opened here, so give only local ones (``/tmp``): open a file on the mount through
        :mod:`s3files_store.tree` and pass the file object.
        """
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as file:  # noqa: PTH123 - a local file the caller names
                return self.copy_from(file)
        with self._guard():
            fd = _regular_fd(source)
            if fd is None:
                before = self.tell()
                while chunk := source.read(CHUNK_BYTES):
                    self.write(chunk)
                return self.tell() - before
            self._drain()
            start = source.tell()
            copied = self._copy_file(fd, start, str(getattr(source, "name", "the source")))
            source.seek(start + copied)
            return copied

    def commit(self) -> None:
        """Write what is buffered and publish the file: what a clean exit from the block does."""
        if self._failed is not None:  # the caller caught the failure: the bytes are incomplete
            raise StorageError(
                f"{self._staging.key} was not committed: a write failed before ({self._failed}); its "
                f"staging file was removed"
            ) from self._failed
        with self._guard(writing=False):  # the caller may have closed the file: commit it all the same
            self._drain()
            self._check_deadline()
            # A kernel copy's hashing may still run: publish() waits for it after the fsync.
            self._result = self._staging.publish(self._written, self._digest)
            self._shutdown()
        self.close()

    def discard(self) -> None:
        """Abandon the write: nothing is committed and the staging file is removed."""
        if self._result is None:
            self._stop.set()
            self._shutdown()
            if self._pending is not None:
                os.close(self._pending.fd)
                self._pending = None
            self._staging.discard()
        self.close()

    @contextlib.contextmanager
    def _guard(self, writing: bool = True) -> Iterator[None]:
        if writing and self.closed:
            raise ValueError(f"{self._staging.key}: I/O operation on a closed file")
        try:
            yield
        except BaseException as exc:
            self._failed = self._failed or exc
            self.discard()
            raise

    def _drain(self) -> None:
        if self._fill:
            fill, self._fill = self._fill, 0
            # The buffer goes with its chunk to be hashed; the next small write takes a new one.
            buffer, self._buffer = self._buffer, memoryview(b"")
            self._emit(buffer[:fill], stable=True)

    def _emit(self, view: memoryview, *, stable: bool) -> None:
        """Write ``view`` chunk by chunk; the worker thread hashes each while the next ones are
        written and, for the last, while publish() fsyncs. Unless ``stable`` (memory nobody changes),
        every chunk is hashed before this returns."""
        self._settle()
        for start in range(0, len(view), CHUNK_BYTES):
            chunk = view[start : start + CHUNK_BYTES]
            self._check_deadline()
            if len(chunk) < _PARALLEL_HASH_BYTES:
                self._hashed()  # after the chunks before it
                self._hash.update(chunk)
            else:
                while len(self._hashing) >= _HASHING_AHEAD:  # bounds the memory held for hashing
                    self._hashing.popleft().result()
                self._hashing.append(self._workers().submit(self._hash.update, chunk))
            self._staging.write(chunk)
            self._written += len(chunk)
        if not stable:
            self._hashed()

    def _hashed(self) -> None:
        """Wait until every chunk queued so far is hashed."""
        while self._hashing:
            self._hashing.popleft().result()

    def _copy_file(self, fd: int, start: int, name: str) -> int:
        """Copy the regular file ``fd`` from ``start`` to its end, in the kernel where it can."""
        self._settle()
        before = os.fstat(fd)
        size = max(before.st_size - start, 0)
        # Our own descriptor, for the hashing and the final status: the caller may close the source
        # as soon as this returns.
        watch = os.dup(fd)
        try:
            hashed = self._workers().submit(_hash_range, watch, start, size, self._hash.update, self._stop)
        except BaseException:
            os.close(watch)
            raise
        pending = self._pending = _KernelCopy(watch, hashed, before, name)
        routines = [_copy_file_range, _sendfile, _pread_write]
        copied = 0
        while copied < size:
            self._check_deadline(copied)
            try:
                moved = routines[0](fd, self._staging.fd, start + copied, min(CHUNK_BYTES, size - copied))
            except OSError as exc:
                if copied or len(routines) == 1 or exc.errno not in _NO_KERNEL_COPY:
                    with self._staging.step():  # removes the staging file, names the condition
                        raise
                routines.pop(0)  # this routine does not apply here (e.g. EXDEV): nothing was copied
                continue
            if not moved:
                break  # the source shrank: _settle refuses it
            copied += moved
        self._written += copied
        pending.copied = copied
        return copied

    def _settle(self) -> None:
        """Wait for the hashing of the last kernel copy; refuse a source that changed meanwhile.

        The source's status is taken here, once both the copy and its hashing are over, so a change
        at any moment of either shows. A same-size rewrite within the clock tick of the source's last
        change shows only where the kernel gives it a fine-grained mtime and ctime (multigrain
        timestamps, Linux >= 6.13 on ext4, xfs, btrfs, tmpfs).
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            done = pending.hashed.result()
            after = os.fstat(pending.fd)
        finally:
            os.close(pending.fd)
        before = pending.before
        unchanged = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (
            before.st_size,
            before.st_mtime_ns,
            before.st_ctime_ns,
        )
        if not (unchanged and done == pending.copied):
            raise StorageError(
                f"{pending.name} changed while it was copied to {self._staging.key}: nothing was committed. "
                f"Copy from a file nothing else writes meanwhile (e.g. one this function wrote to /tmp)"
            )

    def _digest(self) -> str:
        self._settle()
        self._hashed()
        return self._hash.hexdigest()

    def _check_deadline(self, copying: int = 0) -> None:
        if self._remaining_ms is None:
            return
        left = self._remaining_ms()
        if left >= self._margin_ms:
            return
        written = self._written + copying
        rate = written / max(time.monotonic() - self._started, 1e-3) / 1e6
        raise DeadlineError(
            f"stopped writing {self._staging.key} after {written:,} bytes ({rate:.0f} MB/s) with {left} ms "
            f"left, less than the {self._margin_ms} ms (DEADLINE_MARGIN_MS) kept to finish safely: nothing "
            f"was committed and the staging file was removed. Raise the function's Timeout or send a "
            f"smaller input"
        )

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # cold starts that never stream skip it

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3files-hash")
        return self._pool

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class _KernelCopy:
    """A kernel copy whose hashing may still run: our descriptor of the source (closed by
    :meth:`AtomicFile._settle` or :meth:`AtomicFile.discard`), its status before, the bytes copied."""

    def __init__(self, fd: int, hashed: Future[int], before: os.stat_result, name: str) -> None:
        self.fd, self.hashed, self.before, self.name = fd, hashed, before, name
        self.copied = -1  # until the copy is over


def _regular_fd(source: IO[bytes] | io.BufferedIOBase) -> int | None:
    """The descriptor of ``source`` when it is a regular file the kernel can copy from."""
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _hash_range(
    fd: int, offset: int, size: int, update: Callable[[Buffer], None], stop: threading.Event
) -> int:
    """Hash ``size`` bytes of ``fd`` from ``offset``; return the bytes hashed."""
    # The lowest CPU priority, for this worker thread only (Linux nice is per thread): it hashes on
    # idle CPU (a second core, or while the copy and the fsync wait for the disk) and never takes a
    # core from the copy itself.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    buffer = memoryview(bytearray(min(CHUNK_BYTES, size)))
    done = 0
    while done < size and not stop.is_set():
        got = os.preadv(fd, [buffer[: min(CHUNK_BYTES, size - done)]], offset + done)
        if not got:
            break
        update(buffer[:got])
        done += got
    return done


def _copy_file_range(src: int, dst: int, offset: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, offset)


def _sendfile(src: int, dst: int, offset: int, count: int) -> int:
    return os.sendfile(dst, src, offset, count)


def _pread_write(src: int, dst: int, offset: int, count: int) -> int:
    data = memoryview(os.pread(src, count, offset))
    view = data
    while view:
        view = view[os.write(dst, view) :]
    return len(data)
