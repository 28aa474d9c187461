"""Resident memory of one listing page in a directory of a million entries.

The directory's entries are empty files created with os.open on the benchmark's disk, and removed
afterwards. Each page is listed by a fresh child process (this file, `child` mode) that first lists
a small directory (imports, logger, caches), then resets its peak (VmHWM, through
/proc/self/clear_refs), lists one page of PAGE keys in the big directory and reports VmHWM minus
VmRSS before the page. Two pages: the first, and the one after a cursor in the middle.
Target: growth < TARGET_MIB, whatever the directory's size (a page keeps O(limit) names).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENTRIES = 1_000_000
PAGE = 100
TARGET_MIB = 32
BIG = "documents/2026/12/01"
SMALL = "documents/2026/11/30"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _name(i: int) -> str:
    return f"doc-{i:07d}.json"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(root: Path, layer: Path, cursor: str | None) -> dict[str, Any]:
    """One page of PAGE keys in the big directory (run in a fresh process)."""
    sys.path.insert(0, str(layer))
    from s3files_store.config import Config
    from s3files_store.listing import list_documents

    config = Config(mount_root=root)
    list_documents(SMALL, config, limit=PAGE)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    keys, following = list_documents(BIG, config, limit=PAGE, cursor=cursor)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    if len(keys) != PAGE or following != keys[-1] or (cursor is not None and keys[0] <= cursor):
        raise RuntimeError(f"the page after {cursor!r} is wrong: {len(keys)} keys, next cursor {following!r}")
    return {"seconds": seconds, "rss_before_kib": before, "rss_growth_kib": peak - before}


def _run_child(root: Path, layer: Path, cursor: str | None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "child", str(root), str(layer), *([cursor] if cursor else [])],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def _populate(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i in range(count):
            os.close(os.open(_name(i), _FLAGS, 0o640, dir_fd=dir_fd))
    finally:
        os.close(dir_fd)


def measure(layer: Path, work: Path) -> dict[str, Any]:
    """Memory growth and time of the first page and of a page from the middle."""
    root = work / "listing"
    try:
        _populate(root / SMALL, 3)
        _populate(root / BIG, ENTRIES)
        pages = {
            "first": _run_child(root, layer, None),
            "middle": _run_child(root, layer, f"{BIG}/{_name(ENTRIES // 2)}"),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    growth = max(page["rss_growth_kib"] for page in pages.values()) / 1024
    return {"entries": ENTRIES, "limit": PAGE, "rss_growth_mib_max": growth, "pages": pages}


def rows(results: dict[str, Any], row: Any) -> list[str]:
    """The markdown row (`row` formats the cells) for the report."""
    growth, pages = results["rss_growth_mib_max"], results["pages"]
    seconds = " / ".join(f"{pages[p]['seconds']:.2f} s" for p in ("first", "middle"))
    verdict = f"< {TARGET_MIB} MiB: " + ("yes" if growth < TARGET_MIB else "**no**")
    return [
        row(
            f"Peak RSS growth, one listing page of {results['limit']} in a directory of "
            f"{results['entries']:,} entries (first / middle page: {seconds})",
            f"{growth:.2f} MiB",
            "",
            "",
            verdict,
        )
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        root, layer, *cursor = sys.argv[2:]
        print(json.dumps(child(Path(root), Path(layer), cursor[0] if cursor else None)))
