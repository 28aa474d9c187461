"""Extract a zip archive that is on the mount into a directory of the mount, member by member.

Each member streams through :func:`s3files_store.stream.atomic_writer`: every file appears
complete or not at all, and memory stays bounded whatever the sizes (archives larger than the
function's memory included). The archive is opened through :mod:`s3files_store.tree`: a regular
file, never through a symlink, never a FIFO or a device.

The whole archive is checked before anything is written, so a hostile or broken archive writes
nothing: the central directory, then every member's local header (where zipfile would otherwise
find a problem only on reaching that member, after the members before it were committed).
Refused, naming the archive, the member and the rule:

- a destination equal to or below DOCUMENT_PREFIX, or a member that would land there: the reader
  expects only JSON documents there (400);
- a path that is not a valid key once put below the destination (:func:`keys.validate_key`):
  absolute, ``..`` or ``.``, a backslash, an empty or hidden segment (``.staging``), a character
  outside ``A-Z a-z 0-9 . _ -``; a path seen twice; a file that is also another member's
  directory; a member that would replace the archive itself (400);
- a member that is neither a regular file nor a directory (a symlink, a device: its unix mode);
  compression other than stored, deflate, bzip2 and lzma; any general purpose flag bit other than
  :data:`SUPPORTED_FLAGS` (bits 1-2 compression options, 3 data descriptor, 11 UTF-8 names), in
  the central directory or the local header: encryption (bit 0), compressed patched data (5),
  strong encryption (6), a masked central directory (13), and every unused or reserved bit (400);
- a file that is not a zip, truncated or damaged: no end record, an unreadable central directory,
  a local header missing or naming another file, a member's data running past the next member or
  the central directory (truncation, or overlapping members: a zip bomb technique) (400);
- a member over :data:`RATIO_FLOOR_BYTES` that inflates more than :data:`MAX_RATIO` times its
  compressed size; an archive whose members inflate in all to more than
  :data:`ARCHIVE_RATIO_FLOOR_BYTES` and more than :data:`MAX_RATIO` times their compressed sizes
  in all (many members small enough for the first rule: 10,000 of 1 MiB of zeros are a 1.3 MB
  bzip2 archive); more than ARCHIVE_MAX_MEMBERS members or ARCHIVE_MAX_BYTES bytes in all
  (configuration); a central directory over :data:`MAX_DIRECTORY_BYTES`, read from the end record
  before zipfile loads it (413).

The declared sizes checked here bound what is written: zipfile stops every member at its declared
size and checks its CRC-32, so a member that inflates further is cut, fails its check, and nothing
of it is committed. Inflating is the one check that cannot run before writing: a member whose
data fails it (bad compressed data, a CRC-32 mismatch, an archive changed while it is read) is
refused when met (400); the members extracted before it stay, each complete, nothing of it is
written, and the message says how many. An archive's content is at fault in every 400 and 413:
the message says to fix the archive, never to retry. After a transient failure (the deadline, the
file system) the same event run again replaces every member atomically: a retry completes the job.

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
# and logs deflate 3-20x; a zip bomb deflates ~1000x (deflate's maximum is 1032x). The rule for the
# whole archive below alone would let one bomb member hide among incompressible ones.
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 1024 * 1024
# The whole archive may inflate more than MAX_RATIO times only up to this many bytes in all, so a
# small archive of very compressible data (a few MiB of repetitive logs, sparse test fixtures)
# still extracts; a bomb gains at most these few MiB from it, an ordinary invocation's writes.
# Above it, an archive writes at most MAX_RATIO times its compressed size.
ARCHIVE_RATIO_FLOOR_BYTES = 8 * 1024 * 1024
# zipfile reads the whole central directory into memory: about 1,600 entries per MiB with
# 100-character names, so 16 MiB holds ARCHIVE_MAX_MEMBERS' default many times over.
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# General purpose flag bits zipfile reads correctly: 1-2 (compression options), 3 (sizes and
# CRC-32 in a data descriptor: zipfile uses the central directory's), 11 (UTF-8 names).
SUPPORTED_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
_FLAG_MEANINGS = {
    0: "encryption",
    4: "enhanced deflating (reserved)",
    5: "compressed patched data",
    6: "strong encryption",
    12: "enhanced compression (reserved)",
    13: "a masked central directory",
}
# Reads of the archive are at least this large (S3 Files bills each >= 32 KiB; direct S3 reads
# serve reads >= 1 MiB straight from S3).
_READ_BYTES = 1024 * 1024
# Local headers are read through windows this large: one read covers the headers of many small
# members, and costs one metered read (>= 32 KiB) beside each large member.
_HEADER_WINDOW_BYTES = 64 * 1024
# What zipfile and the decompressors raise on bad data (bz2 raises OSError without an errno), or
# on a "version needed to extract" it does not know (NotImplementedError).
_CORRUPT = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError, NotImplementedError)
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCAL = struct.Struct("<4s2xH18x2H")  # local file header: signature, flags, name and extra lengths


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
    archive: object,
    destination: object,
    config: Config,
    remaining_ms: Callable[[], int],
    inspect: Callable[[int, int], None] | None = None,
) -> Extraction:
    """Extract the zip at key ``archive`` below key ``destination`` (see the module docstring).

    ``inspect(fd, size)``, when given, sees the opened archive before anything is checked or
    written (the upload pipeline hashes it there, and raises to stop); the extraction reads the
    same open file.

    Raises InvalidRequestError (a bad key, archive or member), TooLargeError (a limit),
    NotFoundError (no archive there), UnsafePathError (a symlink or a non-regular file in the way),
    DeadlineError, MountError or StorageError.
    """
    archive_parts = validate_key(archive, "archive")
    destination_parts = validate_key(destination, "destination")
    if _under_documents(destination_parts, config):
        raise InvalidRequestError(
            f"destination {'/'.join(destination_parts)!r} is DOCUMENT_PREFIX={config.document_prefix!r} or "
            f"below it, where the reader expects only JSON documents the writer committed: nothing was "
            f"extracted. Choose a destination outside DOCUMENT_PREFIX"
        )
    mount.check_mount(config, need_write=True)
    try:
        return _extract_file(archive_parts, destination_parts, config, remaining_ms, inspect)
    except StorageError:
        mount.invalidate()  # the next invoke checks the mount again and names the precise cause
        raise


def _under_documents(parts: Sequence[str], config: Config) -> bool:
    prefix = tuple(config.document_prefix.split("/"))
    return tuple(parts[: len(prefix)]) == prefix


def _extract_file(
    archive_parts: Sequence[str],
    destination_parts: Sequence[str],
    config: Config,
    remaining_ms: Callable[[], int],
    inspect: Callable[[int, int], None] | None,
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
        if inspect is not None:
            inspect(fd, size)
        _check_directory_size(fd, size, shown, config)
        try:
            archive_file = zipfile.ZipFile(file)
        except (*_CORRUPT, OSError) as exc:
            raise InvalidRequestError(
                f"{shown} is not a readable zip archive: {_reason(exc)}. It is truncated or damaged: "
                f"nothing was extracted. Upload the complete archive again"
            ) from None
        with archive_file:
            plan = _plan(archive_file, archive_parts, destination_parts, size, config)
            _check_local_headers(fd, archive_file, shown)
            _make_directory(config.mount_root, destination_parts)
            return _extract(archive_file, plan, shown, destination_parts, config, remaining_ms)


def _reason(exc: BaseException) -> str:
    """What ``exc`` says, or what it means when it says nothing (a bare EOFError: the data ended)."""
    if str(exc):
        return str(exc)
    if isinstance(exc, EOFError):
        return (
            "the data ends before its declared size (the archive is truncated, or changed while it was read)"
        )
    return type(exc).__name__


def _check_directory_size(fd: int, size: int, shown: str, config: Config) -> None:
    """Refuse a central directory too large to load, from the end records (as zipfile finds them)."""
    length = min(size, _END64.size + _END64_LOCATOR.size + _END.size + 0xFFFF)  # + the longest comment
    tail = os.pread(fd, length, size - length)
    at = len(tail) - _END.size  # no archive comment: the record ends the file
    if not (at >= 0 and tail[at : at + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise InvalidRequestError(
            f"{shown} is truncated or not a zip archive: its {size:,} bytes do not end with a zip's end of "
            f"central directory record. Nothing was extracted: upload the complete archive again"
        )
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
    archive: zipfile.ZipFile,
    archive_parts: Sequence[str],
    destination: Sequence[str],
    size: int,
    config: Config,
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every member with its key, once all of them passed every check of the central directory."""
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
    total = compressed = 0
    for info in infos:
        where = f"member {info.filename[:200]!r} of {shown}"
        parts = _member_key(info, destination, where)
        if parts in seen:
            raise InvalidRequestError(f"{where} appears twice: nothing was extracted. Fix the archive")
        seen.add(parts)
        if _under_documents(parts, config):
            raise InvalidRequestError(
                f"{where} would land in DOCUMENT_PREFIX={config.document_prefix!r}, where the reader "
                f"expects only JSON documents the writer committed: nothing was extracted. Choose a "
                f"destination that keeps every member outside DOCUMENT_PREFIX"
            )
        directories.update(parts[:depth] for depth in range(len(destination) + 1, len(parts)))
        _check_member(info, where)
        total += info.file_size
        compressed += info.compress_size
        if total > config.archive_max_bytes:
            raise TooLargeError(
                f"{shown} inflates to more than ARCHIVE_MAX_BYTES={config.archive_max_bytes:,} bytes "
                f"(reached at {where}): nothing was extracted. Split the archive or raise the limit"
            )
        plan.append((info, parts))
    files = {parts for info, parts in plan if not info.is_dir()}
    if both := files & directories:
        raise InvalidRequestError(
            f"{'/'.join(min(both))} is both a file and a directory in {shown}: nothing was extracted. "
            f"Fix the archive"
        )
    if tuple(archive_parts) in files:
        raise InvalidRequestError(
            f"{shown} holds a member that would replace it: nothing was extracted. Choose another destination"
        )
    # Declared compressed sizes may overlap (one stretch of data shared by many members): the
    # archive's own size bounds them.
    compressed = min(compressed, size)
    if total > ARCHIVE_RATIO_FLOOR_BYTES and total > MAX_RATIO * compressed:
        raise TooLargeError(
            f"{shown} inflates {compressed:,} compressed bytes to {total:,}, more than {MAX_RATIO} times in "
            f"all (allowed only up to {ARCHIVE_RATIO_FLOOR_BYTES:,} bytes): refused as a likely zip bomb, "
            f"nothing was extracted. Send data this compressible in archives that inflate to at most "
            f"{ARCHIVE_RATIO_FLOOR_BYTES:,} bytes each"
        )
    return plan


def _member_key(info: zipfile.ZipInfo, destination: Sequence[str], where: str) -> tuple[str, ...]:
    name = info.filename.removesuffix("/") if info.is_dir() else info.filename
    try:
        return validate_key("/".join((*destination, name)))
    except InvalidRequestError:
        raise InvalidRequestError(
            f"{where} has an unsafe or unsupported path: it must be relative, without '..', '.', "
            f"backslashes, empty or hidden segments, in characters A-Z a-z 0-9 . _ -. Nothing was "
            f"extracted: rename it in the archive"
        ) from None


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a symbolic link" if kind == stat.S_IFLNK else "a device, FIFO or socket"
        raise InvalidRequestError(
            f"{where} is {what}: only regular files and directories are extracted. Nothing was extracted: "
            f"remove it from the archive"
        )
    _check_flags(info.flag_bits, where)
    if info.compress_type not in SUPPORTED_COMPRESSION:
        raise InvalidRequestError(
            f"{where} uses compression method {info.compress_type}; supported: "
            f"{', '.join(SUPPORTED_COMPRESSION.values())}. Nothing was extracted: re-create the archive "
            f"with deflate"
        )
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * info.compress_size:
        raise TooLargeError(
            f"{where} inflates {info.compress_size:,} bytes to {info.file_size:,}, more than {MAX_RATIO} "
            f"times: refused as a likely zip bomb, nothing was extracted. Send data this compressible "
            f"in members of at most {RATIO_FLOOR_BYTES:,} bytes"
        )


def _check_flags(flags: int, where: str) -> None:
    if unsupported := flags & ~SUPPORTED_FLAGS:
        bits = [bit for bit in range(16) if unsupported >> bit & 1]
        named = ", ".join(f"{bit} ({_FLAG_MEANINGS.get(bit, 'unused')})" for bit in bits)
        raise InvalidRequestError(
            f"{where} sets general purpose flag bit{'s' if len(bits) > 1 else ''} {named}, which this "
            f"extractor does not support: nothing was extracted. Re-create the archive without "
            f"encryption or patching"
        )


def _check_local_headers(fd: int, archive: zipfile.ZipFile, shown: str) -> None:
    """Refuse, before anything is written, what zipfile finds only on reaching a member: a missing
    local header, one with other flags or another name, data running into the next member.

    zipfile trusts the central directory's sizes and flags; a hostile archive may say otherwise in
    a local header. Headers are read in archive order, many per read.
    """
    ordered = sorted(archive.infolist(), key=lambda info: info.header_offset)
    ends = [info.header_offset for info in ordered[1:]] + [archive.start_dir]
    window = _Window(fd, shown)
    for info, end in zip(ordered, ends, strict=True):
        where = f"member {info.filename[:200]!r} of {shown}"
        at = info.header_offset
        header = window.read(at, _LOCAL.size) if at >= 0 else b""
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise InvalidRequestError(
                f"{where} has no local header at byte {at:,}, where the central directory puts it: the "
                f"archive is truncated or damaged. Nothing was extracted: upload the complete archive again"
            )
        _, flags, name_length, extra_length = _LOCAL.unpack(header)
        _check_flags(flags, where)
        raw = window.read(at + _LOCAL.size, name_length)
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if name != info.orig_filename:
            raise InvalidRequestError(
                f"{where} is named {name[:200]!r} in its local header: the archive is damaged, or built "
                f"to show different names to different tools. Nothing was extracted: re-create the archive"
            )
        data_end = at + _LOCAL.size + name_length + extra_length + info.compress_size
        if data_end > end:
            reached = "the central directory" if end == archive.start_dir else "the next member"
            raise InvalidRequestError(
                f"{where} declares {info.compress_size:,} compressed bytes, running to byte {data_end:,}, "
                f"past {reached} (byte {end:,}): the archive is truncated or damaged, or its members "
                f"overlap (a zip bomb technique). Nothing was extracted: upload the complete archive again"
            )


class _Window:
    """Reads of the archive at increasing offsets, served from one window read at a time."""

    def __init__(self, fd: int, shown: str) -> None:
        self.fd, self.shown = fd, shown
        self.at, self.data = 0, b""

    def read(self, at: int, length: int) -> bytes:
        """``length`` bytes at ``at``, or fewer at the end of the file."""
        if not (self.at <= at and at + length <= self.at + len(self.data)):
            try:
                self.data = os.pread(self.fd, max(length, _HEADER_WINDOW_BYTES), at)
            except OSError as exc:
                raise StorageError.from_os_error(exc, f"reading {self.shown}") from exc
            self.at = at
        return self.data[at - self.at : at - self.at + length]


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
        done = (
            f"{len(files)} files and {directories} directories of {shown} were extracted before "
            f"{info.filename!r}, each complete, and nothing of it"
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
        except StoreError as exc:  # the deadline, the file system: transient
            exc.add_note(f"{done}; the same event run again extracts the whole archive")
            raise
        except OSError as exc:
            if exc.errno not in (None, errno.EINVAL):
                error = StorageError.from_os_error(exc, f"reading {shown}")
                error.add_note(f"{done}; the same event run again extracts the whole archive")
                raise error from exc
            raise _corrupt(info, shown, exc, done) from None
        except _CORRUPT as exc:
            raise _corrupt(info, shown, exc, done) from None
    return Extraction(archive=shown, destination="/".join(destination), files=files, directories=directories)


def _corrupt(info: zipfile.ZipInfo, shown: str, exc: BaseException, done: str) -> InvalidRequestError:
    """A member's data failed while inflating: the archive is at fault, and running it again fails again."""
    return InvalidRequestError(
        f"member {info.filename!r} of {shown} is corrupt: {_reason(exc)}. {done}. Re-create the archive "
        f"and upload it complete: extracting it then replaces these files"
    )
