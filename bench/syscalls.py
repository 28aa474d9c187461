"""Operations per commit under strace, and what S3 Files would bill for them.

Metering (reference: s3-files-facts.md, "Metering"): a data read/write is billed as at least 32 KiB,
a metadata operation as at least 4 KiB. Classification of the syscalls that touch the mount:

- data: read/write family, billed max(32 KiB, bytes) each.
- metadata: create (open with O_CREAT), delete (unlink, rmdir), rename, mkdir, chmod/chown,
  truncate, utimes, link/symlink, fsync/fdatasync: 4 KiB each ("syscall" model).
  The "nfs" model drops fsync on a directory: the Linux NFS client answers it without an RPC
  (nfs_fsync_dir), so S3 Files never sees it; the file fsync (a COMMIT) stays billed.
- lookup: stat family, access, open without O_CREAT, getdents, readlink. Not in AWS's list; the
  "upper" model bills each at 4 KiB as well (an NFS GETATTR/LOOKUP the attribute cache may absorb).
- other: close, lseek, fcntl...: not billed.
Syscalls off the mount (stdout for logs and metrics, getrandom for uuid4...) are counted apart.

NFS calls (no NFS server runs here, so they are modelled from the trace, an upper bound): one RPC
for each create (OPEN), data write (WRITE), file fsync (COMMIT), close of a file (CLOSE), rename,
unlink and mkdir; none for a directory fsync or a directory close; and one LOOKUP for each path
component a call resolves (every component of a stat's or an open's path; all but the last of a
create's or a rename's, which the operation itself names), as when the client's caches expired.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from child import END_MARKER, START_MARKER

KIB = 1024
DATA = {"read", "pread64", "readv", "preadv", "preadv2", "write", "pwrite64", "writev", "pwritev", "pwritev2"}
METADATA = {
    "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "truncate", "ftruncate",
    "utimensat", "utimes", "link", "linkat", "symlink", "symlinkat", "fsync", "fdatasync",
}  # fmt: skip
LOOKUP = {
    "stat", "lstat", "fstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
    "statfs", "fstatfs", "getdents64", "readlink", "readlinkat",
}  # fmt: skip
OPENS = {"open", "openat", "openat2", "creat"}
_FD_PATH = re.compile(r"<(/[^>]*)>")
_STRING_PATH = re.compile(r'"(/[^"]*)"')
_FD_NUMBER = re.compile(r"^(\d+)<")
_FIRST_FD_PATH = re.compile(r"^\d+<(/[^>]*)>")
# Same operation, different entry point (path-based vs relative to a directory descriptor).
_SAME_AS = {"renameat": "rename", "renameat2": "rename", "unlinkat": "unlink", "mkdirat": "mkdir"}
# "PID name(args) = result"; strace pads short calls with spaces before the "=".
_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+= (.*)$")
_STRING = re.compile(r'"([^"]*)"')
# Operations that name their last path component themselves (no LOOKUP for it).
_NAMING = {"rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir"}


def _lookups(name: str, args: str, root: str) -> int:
    """Path components the call resolves beyond what it names itself (see the module docstring)."""
    if name not in OPENS | LOOKUP | _NAMING:
        return 0
    count = 0
    for text in _STRING.findall(args):
        path = os.path.relpath(text, root) if text.startswith("/") else text
        if not text or path.startswith(".."):
            continue
        parts = [part for part in path.split("/") if part not in ("", ".")]
        named = name in _NAMING or (name in OPENS and "O_CREAT" in args)
        count += max(len(parts) - named, 0)
    return count


def _rpcs(name: str, kind: str, is_dir: bool) -> int:
    """RPCs of one call on the mount besides its LOOKUPs (see the module docstring)."""
    if kind in {"data", "metadata"}:  # WRITE, OPEN, COMMIT (a file fsync), RENAME, REMOVE, MKDIR...
        return 1
    return int(name == "close" and not is_dir)  # CLOSE of a file; a directory's: none


def _classify(name: str, args: str, is_dir_fd: bool) -> str:
    if name in OPENS:
        return "metadata" if "O_CREAT" in args else "lookup"
    if name in {"fsync", "fdatasync"} and is_dir_fd:
        return "dir-fsync"
    if name in DATA:
        return "data"
    if name in METADATA:
        return "metadata"
    return "lookup" if name in LOOKUP else "other"


def parse_trace(text: str, root: Path) -> list[tuple[str, str, int, bool, int, int]]:
    """(syscall, class, bytes, on_mount, NFS RPCs, NFS LOOKUPs) for each syscall between the markers."""
    prefix = str(root).rstrip("/") + "/"
    dir_fds: set[str] = set()
    calls: list[tuple[str, str, int, bool, int, int]] = []
    inside = False
    for line in text.splitlines():
        if START_MARKER in line or END_MARKER in line:
            inside = START_MARKER in line
            continue
        call = _CALL.match(line)
        if not inside or call is None:
            continue
        name, args, result = call.groups()
        if name in OPENS and (fd := _FD_NUMBER.match(result)):
            (dir_fds.add if "O_DIRECTORY" in args else dir_fds.discard)(fd[1])
        first_fd = _FD_NUMBER.match(args)
        # A directory descriptor opened before the trace started (kept between commits) is still
        # a directory: strace -y shows its path.
        first_path = _FIRST_FD_PATH.match(args)
        is_dir = bool(first_fd and first_fd[1] in dir_fds)
        is_dir = is_dir or bool(first_path and Path(first_path[1]).is_dir())
        paths = [os.path.normpath(p) + "/" for p in _FD_PATH.findall(args) + _STRING_PATH.findall(args)]
        on_mount = any(p.startswith(prefix) for p in paths)
        kind = _classify(name, args, is_dir)
        returned = result.split(maxsplit=1)[0].split("<")[0]
        size = int(returned) if kind == "data" and returned.lstrip("-").isdigit() else 0
        same = _SAME_AS.get(name, name)
        rpcs, lookups = (_rpcs(same, kind, is_dir), _lookups(name, args, str(root))) if on_mount else (0, 0)
        calls.append((same, kind, max(size, 0), on_mount, rpcs, lookups))
    return calls


def meter(calls: list[tuple[str, str, int, bool, int, int]], commits: int) -> dict[str, Any]:
    """Per-commit syscall and NFS call counts, and billed KiB per document under the three models."""
    on_mount = [c for c in calls if c[3]]
    data_kib = sum(max(32 * KIB, size) for _, kind, size, *_ in on_mount if kind == "data") / KIB
    kinds = Counter(kind for _, kind, *_ in on_mount)
    billed = {
        "nfs": data_kib + 4 * kinds["metadata"],
        "syscall": data_kib + 4 * (kinds["metadata"] + kinds["dir-fsync"]),
        "upper": data_kib + 4 * (kinds["metadata"] + kinds["dir-fsync"] + kinds["lookup"]),
    }
    per = float(commits)
    return {
        "on_mount_per_commit": {k: v / per for k, v in sorted(Counter(n for n, *_ in on_mount).items())},
        "metadata_per_commit": {
            k: v / per
            for k, v in sorted(
                Counter(n for n, kind, *_ in on_mount if kind in {"metadata", "dir-fsync"}).items()
            )
        },
        "kinds_per_commit": {k: v / per for k, v in sorted(kinds.items())},
        "off_mount_per_commit": {
            k: v / per for k, v in sorted(Counter(n for n, _, _, m, *_ in calls if not m).items())
        },
        "syscalls_per_commit": len(calls) / per,
        "nfs_calls_per_commit": sum(c[4] + c[5] for c in on_mount) / per,
        "nfs_lookups_per_commit": sum(c[5] for c in on_mount) / per,
        "billed_kib_per_commit": {k: v / per for k, v in billed.items()},
    }


def trace(
    mode: str, commits: int, size: int, mount_root: Path, writer_dir: Path, layer: Path
) -> dict[str, Any]:
    """Run bench/child.py under strace and meter its steady-state commits."""
    strace = shutil.which("strace")
    if strace is None:
        return {"skipped": "strace not found: apt-get install strace"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.txt"
        child = [sys.executable, str(Path(__file__).with_name("child.py")), mode, str(commits), str(size)]
        child += [str(mount_root), str(writer_dir), str(layer)]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        subprocess.run([strace, "-f", "-y", "-s", "0", "-qq", "-o", str(out), *child], check=True, env=env)
        calls = parse_trace(out.read_text(errors="replace"), mount_root)
    return meter(calls, commits)


def compare(writer_dir: Path, layer: Path, mount_root: Path, size: int, commits: int) -> dict[str, Any]:
    """Writer, commit() and floor side by side, plus the metadata operations the writer adds."""
    results = {
        mode: trace(mode, commits, size, mount_root, writer_dir, layer)
        for mode in ("writer", "commit", "floor")
    }
    if "skipped" in results["floor"]:
        return results["floor"]
    floor_meta = results["floor"]["metadata_per_commit"]
    results["extra_metadata_vs_floor"] = {
        mode: {
            op: n - floor_meta.get(op, 0.0)
            for op, n in results[mode]["metadata_per_commit"].items()
            if n - floor_meta.get(op, 0.0) > 0
        }
        for mode in ("writer", "commit")
    }
    return results
