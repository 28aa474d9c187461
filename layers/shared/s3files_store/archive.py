"""Extract a zip archive that is on the mount into a directory of the mount, member by member.

Each member streams through :func:`s3files_store.stream.atomic_writer`: every file appears
complete or not at all, and memory stays bounded whatever the sizes (archives larger than the
function's memory included). The archive is opened through :mod:`s3files_store.tree`: a regular
file, never through a symlink, never a FIFO or a device.

The whole central directory is checked before anything is written, so a hostile archive writes
nothing. Refused, naming the member and the rule:

- a path that is not a valid key once put below the destination (:func:`keys.validate_key`):
  absolute, ``..`` or ``.``, a backslash, an empty or hidden segment (``.staging``), a character
  outside ``A-Z a-z 0-9 . _ -``; a path seen twice; a file that is also another member's
  directory; a member that would replace the archive itself (400);
- a member that is neither a regular file nor a directory (a symlink, a device: its unix mode),
  an encrypted member, compression other than stored, deflate, bzip2 and lzma (400);
- a member over 1 MiB that inflates more than :data:`MAX_RATIO` times its compressed size; more
  than ARCHIVE_MAX_MEMBERS members or ARCHIVE_MAX_BYTES bytes in all (configuration); a central
  directory over :data:`MAX_DIRECTORY_BYTES`, read from the end record before zipfile loads it
  (413).

Declared sizes can lie: zipfile stops every member at its declared size and checks its CRC-32, so
a member that inflates further or fails its check is refused when met, and nothing of it is
written. After the checks, a failure (a corrupt member, the deadline, the file system) keeps the
members extracted before it, each complete, writes nothing of the member it hit, and says how
many were extracted. The same event run again replaces every member atomically: a retry completes
the job.

Example:
    >>> extraction = extract_zip("uploads/data.zip", "extracted/data", get_config(), lambda: 60_000)
    >>> len(extraction.files), extraction.bytes
"""

from __future__ import annotations

import errno
import lzma
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3files_store import mount, tree
from s3files_store.exceptions import (
    InvalidRequestError,
    NotFoundError,
    StorageError,
    StoreError,
    TooLargeError,
)
from s3files_store.keys import validate_key
from s3files_store.stream import atomic_writer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from s3files_store.commit import CommitResult
    from s3files_store.config import Config

# A member over RATIO_FLOOR_BYTES may inflate at most this many times its compressed size. Text
# and logs deflate 3-20x; a zip bomb deflates ~1000x (deflate's maximum is 1032x).
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 1024 * 1024
# zipfile reads the whole central directory into memory: about 1,600 entries per MiB with
# 100-character names, so 16 MiB holds ARCHIVE_MAX_MEMBERS' default many times over.
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# Reads of the archive are at least this large (S3 Files bills each >= 32 KiB; direct S3 reads
# serve reads >= 1 MiB straight from S3).
_READ_BYTES = 1024 * 1024
# What zipfile and the decompressors raise on bad data (bz2 raises OSError without an errno), or
# on a "version needed to extract" it does not know (NotImplementedError).
_CORRUPT = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError, NotImplementedError)
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one extraction committed, in archive order."""

    archive: str
    destination: str
    files: list[CommitResult]
    directories: int

    @property
    def bytes(self) -> int:
        return sum(result.bytes for result in self.files)


def extract_zip(
    archive: object, destination: object, config: Config, remaining_ms: Callable[[], int]
) -> Extraction:
    """Extract the zip at key ``archive`` below key ``destination`` (see the module docstring).

    Raises InvalidRequestError (a bad key, archive or member), TooLargeError (a limit),
    NotFoundError (no archive there), UnsafePathError (a symlink or a non-regular file in the way),
    DeadlineError, MountError or StorageError.
    """
    archive_parts = validate_key(archive, "archive")
    destination_parts = validate_key(destination, "destination")
    mount.check_mount(config, need_write=True)
    try:
        return _extract_file(archive_parts, destination_parts, config, remaining_ms)
    except StorageError:
        mount.invalidate()  # the next invoke checks the mount again and names the precise cause
        raise


def _extract_file(
    archive_parts: Sequence[str],
    destination_parts: Sequence[str],
    config: Config,
    remaining_ms: Callable[[], int],
) -> Extraction:
    shown = "/".join(archive_parts)
    try:
        fd, size = tree.open_key(config.mount_root, archive_parts, 2**63)
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundError(
            f"no archive at {shown!r}: upload it to the bucket below the access point's root directory "
            f"(it appears on the mount under that key), then invoke again"
        ) from None
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"opening archive {shown}") from exc
    with os.fdopen(fd, "rb", buffering=_READ_BYTES) as file:
        _check_directory_size(fd, size, shown, config)
        try:
            archive_file = zipfile.ZipFile(file)
        except (*_CORRUPT, OSError) as exc:
            raise InvalidRequestError(
                f"{shown} is not a readable zip archive ({exc}): check that the upload was complete"
            ) from None
        with archive_file:
            plan = _plan(archive_file, archive_parts, destination_parts, config)
            _make_directory(config.mount_root, destination_parts)
            return _extract(archive_file, plan, shown, destination_parts, config, remaining_ms)


def _check_directory_size(fd: int, size: int, shown: str, config: Config) -> None:
    """Refuse a central directory too large to load, from the end records (as zipfile finds them)."""
    length = min(size, _END64.size + _END64_LOCATOR.size + _END.size + 0xFFFF)  # + the longest comment
    tail = os.pread(fd, length, size - length)
    at = len(tail) - _END.size  # no archive comment: the record ends the file
    if not (at >= 0 and tail[at : at + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise InvalidRequestError(f"{shown} is not a zip archive (no end of central directory record)")
    entries, directory = _END.unpack_from(tail, at)[4:6]
    locator = at - _END64_LOCATOR.size
    record = locator - _END64.size
    if (
        record >= 0
        and tail[locator : locator + 4] == b"PK\x06\x07"
        and tail[record : record + 4] == b"PK\x06\x06"
    ):
        entries, directory = _END64.unpack_from(tail, record)[7:9]
    if entries > config.archive_max_members:
        raise TooLargeError(
            f"{shown} has {entries:,} members, more than ARCHIVE_MAX_MEMBERS={config.archive_max_members:,}: "
            f"nothing was extracted. Split the archive or raise ARCHIVE_MAX_MEMBERS"
        )
    if directory > MAX_DIRECTORY_BYTES:
        raise TooLargeError(
            f"{shown} has a central directory of {directory:,} bytes, more than the {MAX_DIRECTORY_BYTES:,} "
            f"this function loads: nothing was extracted. Split the archive"
        )


def _plan(
    archive: zipfile.ZipFile, archive_parts: Sequence[str], destination: Sequence[str], config: Config
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every member with its key, once all of them passed every check."""
    shown = "/".join(archive_parts)
    infos = archive.infolist()
    if len(infos) > config.archive_max_members:
        raise TooLargeError(
            f"{shown} has {len(infos):,} members, more than ARCHIVE_MAX_MEMBERS="
            f"{config.archive_max_members:,}: nothing was extracted. Split the archive or raise the limit"
        )
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    directories: set[tuple[str, ...]] = set()
    total = 0
    for info in infos:
        where = f"member {info.filename[:200]!r} of {shown}"
        parts = _member_key(info, destination, where)
        if parts in seen:
            raise InvalidRequestError(f"{where} appears twice: nothing was extracted")
        seen.add(parts)
        directories.update(parts[:depth] for depth in range(len(destination) + 1, len(parts)))
        _check_member(info, where)
        total += info.file_size
        if total > config.archive_max_bytes:
            raise TooLargeError(
                f"{shown} inflates to more than ARCHIVE_MAX_BYTES={config.archive_max_bytes:,} bytes "
                f"(reached at {where}): nothing was extracted. Split the archive or raise the limit"
            )
        plan.append((info, parts))
    files = {parts for info, parts in plan if not info.is_dir()}
    if both := files & directories:
        raise InvalidRequestError(
            f"{'/'.join(min(both))} is both a file and a directory in {shown}: nothing was extracted"
        )
    if tuple(archive_parts) in files:
        raise InvalidRequestError(f"{shown} holds a member that would replace it: nothing was extracted")
    return plan


def _member_key(info: zipfile.ZipInfo, destination: Sequence[str], where: str) -> tuple[str, ...]:
    name = info.filename.removesuffix("/") if info.is_dir() else info.filename
    try:
        return validate_key("/".join((*destination, name)))
    except InvalidRequestError:
        raise InvalidRequestError(
            f"{where} has an unsafe or unsupported path: it must be relative, without '..', '.', "
            f"backslashes, empty or hidden segments, in characters A-Z a-z 0-9 . _ -. Nothing was extracted"
        ) from None


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a symbolic link" if kind == stat.S_IFLNK else "a device, FIFO or socket"
        raise InvalidRequestError(
            f"{where} is {what}: only regular files and directories are extracted. Nothing was extracted"
        )
    if info.flag_bits & 0x1:
        raise InvalidRequestError(f"{where} is encrypted, which is not supported: nothing was extracted")
    if info.compress_type not in SUPPORTED_COMPRESSION:
        raise InvalidRequestError(
            f"{where} uses compression method {info.compress_type}; supported: "
            f"{', '.join(SUPPORTED_COMPRESSION.values())}. Re-create the archive with deflate"
        )
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * info.compress_size:
        raise TooLargeError(
            f"{where} inflates {info.compress_size:,} bytes to {info.file_size:,}, more than {MAX_RATIO} "
            f"times: refused as a likely zip bomb, nothing was extracted"
        )


def _make_directory(root: Path, parts: Sequence[str]) -> None:
    try:
        tree.return_dir(root, tuple(parts), tree.borrow_dir(root, tuple(parts)))
    except OSError as exc:
        tree.forget_kept()
        raise StorageError.from_os_error(exc, f"creating directory {'/'.join(parts)}") from exc


def _extract(
    archive: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    shown: str,
    destination: Sequence[str],
    config: Config,
    remaining_ms: Callable[[], int],
) -> Extraction:
    files: list[CommitResult] = []
    directories = 0
    for info, parts in plan:
        progress = (
            f"{len(files)} files and {directories} directories of {shown} were extracted before "
            f"{info.filename!r}, each complete, and nothing of it; the same event run again extracts "
            f"the whole archive"
        )
        try:
            if info.is_dir():
                _make_directory(config.mount_root, parts)
                directories += 1
                continue
            with (
                archive.open(info) as member,
                atomic_writer(
                    config.mount_root,
                    "/".join(parts),
                    remaining_ms=remaining_ms,
                    margin_ms=config.deadline_margin_ms,
                ) as out,
            ):
                out.copy_from(member)
            files.append(out.result)
        except StoreError as exc:
            exc.add_note(progress)
            raise
        except OSError as exc:
            if exc.errno not in (None, errno.EINVAL):
                raise StorageError.from_os_error(exc, f"reading {shown}") from exc
            raise InvalidRequestError(
                f"member {info.filename!r} of {shown} is corrupt ({exc}): {progress}"
            ) from None
        except _CORRUPT as exc:
            raise InvalidRequestError(
                f"member {info.filename!r} of {shown} is corrupt ({exc}): {progress}"
            ) from None
    return Extraction(archive=shown, destination="/".join(destination), files=files, directories=directories)
