"""Streaming commits of large files against a cp-like floor on the same disk, and their peak memory.

Each run is a fresh child process (this file, `child` mode) that commits a copy of a source file
(beside the mount root, so on the same disk, and read once beforehand so both sides copy from the
page cache) and reports its time and its resident memory: VmRSS just before the write and the peak
(VmHWM, reset through /proc/self/clear_refs) during it. Variants, interleaved round by round:

- floor: `cp`-like copy with copy_file_range, fsync, rename, fsync of the directory; no checksum;
- copy_from: the layer's streaming commit of the path (kernel copy, sha256 on a second thread);
- write: the layer's streaming commit fed CHUNK_BYTES reads of the same file through out.write().

Throughput ratio = floor time / candidate time (higher is better; the targets: copy_from >= 0.95x,
write >= 0.8x, both at every size).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

VARIANTS = ("floor", "copy_from", "write")
TARGET_RATIOS = {"copy_from": 0.95, "write": 0.8}
TARGET_RSS_GROWTH_MIB = 64
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _floor(source: Path, root: Path, key: str) -> None:
    staging = root / ".staging" / f"{uuid.uuid4().hex}.tmp"
    fd = os.open(staging, _FLAGS, 0o640)
    try:
        with source.open("rb") as src:
            size, done = os.fstat(src.fileno()).st_size, 0
            while done < size:
                done += os.copy_file_range(src.fileno(), fd, min(4 << 20, size - done))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(staging, root / key)  # noqa: PTH104 - the bare syscall, as the floor should be
    _fsync_directory(root)


def _fsync_directory(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def child(variant: str, source: Path, root: Path, layer: Path) -> dict[str, Any]:
    """One timed commit of `source` into `root` (run in a fresh process)."""
    sys.path.insert(0, str(layer))
    from s3files_store.stream import CHUNK_BYTES, atomic_writer, commit_file

    (root / ".staging").mkdir(exist_ok=True)
    commit_file(root, "warm-up.bin", Path(__file__))  # imports, threads, kept directories
    key = f"{variant}-{uuid.uuid4().hex}.bin"
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    if variant == "floor":
        _floor(source, root, key)
    elif variant == "copy_from":
        commit_file(root, key, source)
    else:
        with atomic_writer(root, key) as out, source.open("rb", buffering=0) as src:
            while chunk := src.read(CHUNK_BYTES):
                out.write(chunk)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    if (root / key).stat().st_size != source.stat().st_size:
        raise RuntimeError(f"{variant} committed {root / key} with the wrong size")
    (root / key).unlink()
    # Commit the removal now (on ext4 with discard, freeing 1 GiB is slow): the next run's fsyncs
    # must not pay for this one's clean-up.
    _fsync_directory(root)
    return {"seconds": seconds, "rss_before_kib": before, "rss_growth_kib": peak - before}


def _run_child(variant: str, source: Path, root: Path, layer: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "child", variant, str(source), str(root), str(layer)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _source(work: Path, size: int) -> Path:
    path = work / f"source-{size}.bin"
    block = os.urandom(1 << 20)
    with path.open("wb") as file:
        for _ in range(size >> 20):
            file.write(block)
        os.fsync(file.fileno())
    with path.open("rb") as file:  # into the page cache, as for every variant after it
        while file.read(16 << 20):
            pass
    return path


def measure(
    layer: Path, root: Path, work: Path, sizes: dict[str, int], rounds: dict[str, int]
) -> dict[str, Any]:
    """Seconds, throughput and memory per size and variant; ratios against the floor."""
    import latency  # its verdicts; a child run (this file as a script) needs none of it

    results: dict[str, Any] = {}
    for label, size in sizes.items():
        source = _source(work, size)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for i in range(rounds[label]):
            shift = i % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                runs[variant].append(_run_child(variant, source, root, layer))
        source.unlink()
        row: dict[str, Any] = {"bytes": size, "rounds": rounds[label]}
        floor = [r["seconds"] for r in runs["floor"]]
        for variant in VARIANTS:
            seconds = [r["seconds"] for r in runs[variant]]
            row[variant] = {
                "seconds_p50": statistics.median(seconds),
                "mb_per_s": size / statistics.median(seconds) / 1e6,
                "rss_growth_mib_max": max(r["rss_growth_kib"] for r in runs[variant]) / 1024,
                "seconds": seconds,
            }
            if variant != "floor":
                row[variant]["ratio"] = statistics.median(floor) / statistics.median(seconds)
                pairs = zip(floor, seconds, strict=True)
                row[variant]["ratio_paired"] = statistics.median(f / s for f, s in pairs)
                row[variant]["target"] = TARGET_RATIOS[variant]
                row[variant]["verdict"] = latency.verdict(
                    row[variant]["ratio"], row[variant]["ratio_paired"], TARGET_RATIOS[variant], at_most=False
                )
        results[label] = row
    return results


def rows(results: dict[str, Any], row: Any) -> list[str]:
    """Markdown rows (`row` formats the cells) for the report."""
    import latency

    lines = []
    for label, r in results.items():
        floor = r["floor"]
        for variant in ("copy_from", "write"):
            v = r[variant]
            verdict = latency.verdict_cell(">=", v["target"], v["verdict"])
            lines.append(
                row(
                    f"Streaming commit {label}, {variant} (n={r['rounds']}, higher is better)",
                    f"{v['mb_per_s']:.0f} MB/s",
                    f"{floor['mb_per_s']:.0f} MB/s",
                    f"{v['ratio']:.2f}x (paired {v['ratio_paired']:.2f}x)",
                    verdict,
                )
            )
        for variant in VARIANTS:
            growth = r[variant]["rss_growth_mib_max"]
            target = ""
            if variant != "floor" and r["bytes"] >= 1 << 30:
                target = f"< {TARGET_RSS_GROWTH_MIB} MiB: " + (
                    "yes" if growth < TARGET_RSS_GROWTH_MIB else "**no**"
                )
            lines.append(row(f"Peak RSS growth {label}, {variant}", f"{growth:.1f} MiB", "", "", target))
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        variant, source, root, layer = sys.argv[2:6]
        print(json.dumps(child(variant, Path(source), Path(root), Path(layer))))
