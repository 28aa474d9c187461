"""Several writer processes on one partition: distinct ids all land intact; one contended id
always holds exactly one complete payload, for readers during the race and after it."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from crash_support import KIB, documents, fork_worker, payload
from testkit import FakeContext

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

WORKERS = 4
SIZES = (KIB, 4 * KIB, 64 * KIB, 256 * KIB)


def still_running(pids: list[int], statuses: dict[int, int]) -> bool:
    """Reap the workers that exited into `statuses`; True while any is running."""
    for pid in pids:
        if pid not in statuses:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                statuses[pid] = status
    return len(statuses) < len(pids)


def wait_all(pids: list[int], statuses: dict[int, int] | None = None) -> None:
    statuses = statuses if statuses is not None else {}
    statuses |= {pid: os.waitpid(pid, 0)[1] for pid in pids if pid not in statuses}
    codes = [os.waitstatus_to_exitcode(status) for status in statuses.values()]
    assert codes == [0] * len(pids), f"a worker failed (exit codes {codes})"


def commit_all(writer: ModuleType, events: list[dict]) -> None:
    context = FakeContext()
    for event in events:
        response = writer.handler(event, context)
        assert response["statusCode"] == 200, response


@pytest.mark.slow
def test_distinct_ids_from_several_processes_all_land_intact(writer: ModuleType, root: Path) -> None:
    per_worker = 150
    batches = [[payload(f"w{w}-{n:03d}", sizes=SIZES) for n in range(per_worker)] for w in range(WORKERS)]
    wait_all([fork_worker(lambda batch=batch: commit_all(writer, batch)) for batch in batches])

    committed = documents(root)
    expected = {event["id"]: event for batch in batches for event in batch}
    assert committed.keys() == expected.keys()
    for doc_id, path in committed.items():
        assert json.loads(path.read_bytes()) == expected[doc_id], path
    assert len({path.parent for path in committed.values()}) == 1, "all in one partition"
    assert list((root / ".staging").iterdir()) == []


@pytest.mark.slow
def test_same_id_from_several_processes_is_one_complete_payload(writer: ModuleType, root: Path) -> None:
    rounds = 60
    batches = [[payload("contended", w * 1000 + n, SIZES) for n in range(rounds)] for w in range(WORKERS)]
    variants = {event["variant"] for batch in batches for event in batch}
    pids = [fork_worker(lambda batch=batch: commit_all(writer, batch)) for batch in batches]

    # Read while they race: every read is one writer's complete payload, never a mix.
    reads = 0
    statuses: dict[int, int] = {}
    while still_running(pids, statuses):
        for path in root.glob("documents/*/*/*/contended.json"):
            seen = json.loads(path.read_bytes())
            assert seen["variant"] in variants and seen == payload("contended", seen["variant"], SIZES)
            reads += 1
    wait_all(pids, statuses)

    final = documents(root)
    assert final.keys() == {"contended"}
    seen = json.loads(final["contended"].read_bytes())
    assert seen == payload("contended", seen["variant"], SIZES)
    assert seen["variant"] in variants
    assert list((root / ".staging").iterdir()) == []
    print(f"{reads} reads during the race, all complete; final variant {seen['variant']}")
