"""Commit latency per document size and throughput per process count, writer against the floor.

Latency: each round runs the writer handler (end to end: JSON serialization, key, commit, logs and
metrics), the layer's commit() alone, the floor, on bytes of the same length in the same directory,
and the writer's serialization of the event alone (no handler can skip it: Lambda hands it a parsed
event); the order rotates every round so drift on the machine hits all four alike.
Throughput: N forked processes commit 1 KiB documents for a fixed time; writer and floor phases alternate.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from typing import TYPE_CHECKING, Any

from harness import commit_jobs, p50, p99, ratio, silenced_stdout, writer_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.queues import Queue
    from pathlib import Path

    from harness import Writer

KIB = 1024
# 6 MB: about the largest document a reader's response can carry back (6,291,456 bytes in all).
SIZES = {"1 KiB": KIB, "64 KiB": 64 * KIB, "1 MiB": KIB * KIB, "6 MB": 6_000_000}
VARIANTS = ("writer", "commit", "floor", "serialize")
# The writer handler's p50 against the floor's, at most.
WRITER_TARGETS = {"1 KiB": 1.35, "1 MiB": 1.2, "6 MB": 1.2}
# Throughput pairs whose ratios spread wider than this fraction of their median are not judged.
NOISY_SPREAD = 0.25


def commit_latency(writer: Writer, rounds: dict[str, int]) -> dict[str, Any]:
    """p50/p99 seconds per size and variant, with the ratios against the floor."""
    results: dict[str, Any] = {}
    with silenced_stdout():
        for label, size in SIZES.items():
            tag = f"lat{size}"
            jobs, directory = commit_jobs(writer, size, tag)
            jobs["serialize"] = _serialize_jobs(writer, size, tag)
            samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
            warmup = 3
            for i in range(rounds[label] + warmup):
                shift = i % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    job = jobs[variant](i)
                    start = time.perf_counter()
                    job()
                    elapsed = time.perf_counter() - start
                    if i >= warmup:
                        samples[variant].append(elapsed)
            shutil.rmtree(writer.root / directory)
            row: dict[str, Any] = {"bytes": size, "rounds": rounds[label]}
            for variant in VARIANTS:
                row[variant] = {"p50": p50(samples[variant]), "p99": p99(samples[variant])}
            for variant in ("writer", "commit", "serialize"):
                row[f"{variant}_ratio_p50"] = ratio(row[variant]["p50"], row["floor"]["p50"])
                row[f"{variant}_ratio_p99"] = ratio(row[variant]["p99"], row["floor"]["p99"])
                # Same-round pairs: immune to the disk's slow and fast phases that last many rounds.
                pairs = zip(samples[variant], samples["floor"], strict=True)
                row[f"{variant}_ratio_paired"] = p50([ratio(c, f) for c, f in pairs])
            if label in WRITER_TARGETS:
                row["writer_target"] = WRITER_TARGETS[label]
                row["writer_verdict"] = verdict(
                    row["writer_ratio_p50"], row["writer_ratio_paired"], WRITER_TARGETS[label]
                )
            results[label] = row
    return results


def verdict(p50_ratio: float, paired_ratio: float, target: float, at_most: bool = True) -> str:
    """Yes or no when the p50 ratio and the paired ratio agree about the target; when they do
    not, the machine's drift, not the code, decides, and the verdict says so."""
    met = [value <= target if at_most else value >= target for value in (p50_ratio, paired_ratio)]
    if met[0] == met[1]:
        return "yes" if met[0] else "no"
    return f"noise decides (p50 {'yes' if met[0] else 'no'}, paired {'yes' if met[1] else 'no'})"


def verdict_cell(op: str, target: float, said: str) -> str:
    """The report's Target cell: the target, then the verdict (a miss in bold)."""
    return f"{op} {target}x: " + ("**no**" if said == "no" else said)


def _serialize_jobs(writer: Writer, size: int, tag: str) -> Callable[[int], Callable[[], object]]:
    """The writer's serialization of event number i (as write_document does it), alone."""

    def doc_id(i: int) -> str:
        return f"{tag}-w{i:012d}"  # as commit_jobs names them: the same event, byte for byte

    payload_len, _, _ = writer.calibrate(size, len(doc_id(0)))

    def job(i: int) -> Callable[[], object]:
        event = writer_event(doc_id(i), payload_len)
        return lambda: json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    return job


def _worker(
    make: Callable[[int], Callable[[], object]], first: int, start_at: float, end_at: float, out: Queue[int]
) -> None:
    while time.monotonic() < start_at:
        time.sleep(0.001)
    count = 0
    while time.monotonic() < end_at:
        make(first + count)()
        count += 1
    out.put(count)


def _phase(make: Callable[[int], Callable[[], object]], processes: int, seconds: float, phase: int) -> float:
    """Commits per second of `processes` forked workers committing new documents for `seconds`."""
    ctx = multiprocessing.get_context("fork")
    out: Queue[int] = ctx.Queue()
    start_at = time.monotonic() + 0.05 + 0.01 * processes
    workers = [
        ctx.Process(
            target=_worker, args=(make, (phase * 100 + w) * 1_000_000, start_at, start_at + seconds, out)
        )
        for w in range(processes)
    ]
    for process in workers:
        process.start()
    total = sum(out.get() for _ in workers)
    for process in workers:
        process.join()
    return total / seconds


def throughput(writer: Writer, process_counts: tuple[int, ...], seconds: float, pairs: int) -> dict[str, Any]:
    """Commits/s of writer and floor per process count: `pairs` back-to-back writer/floor phases
    (order alternating); the ratio is the median of the per-pair ratios, so a stall of the disk
    that spans a pair cancels out.
    """
    results: dict[str, Any] = {}
    phase = 0
    with silenced_stdout():
        jobs, directory = commit_jobs(writer, KIB, "tput")
        target: Path = writer.root / directory
        for processes in process_counts:
            rates: dict[str, list[float]] = {"writer": [], "floor": []}
            for pair in range(pairs):
                for variant in ("writer", "floor") if pair % 2 == 0 else ("floor", "writer"):
                    phase += 1
                    rates[variant].append(_phase(jobs[variant], processes, seconds, phase))
            shutil.rmtree(target)
            target.mkdir(parents=True)
            ratios = [ratio(w, f) for w, f in zip(rates["writer"], rates["floor"], strict=True)]
            middle = p50(ratios)
            results[str(processes)] = {
                "writer": p50(rates["writer"]),
                "floor": p50(rates["floor"]),
                "ratio": middle,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                # The pairs disagree by more than NOISY_SPREAD of their median: the machine's other
                # work, not the code, decided the figure.
                "noisy": (max(ratios) - min(ratios)) > NOISY_SPREAD * middle,
                "pairs": pairs,
            }
    return results
