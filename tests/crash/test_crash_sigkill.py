"""SIGKILL writers at random moments: no partial document ever appears under a final name.

Workers commit documents of 1 KiB to 4 MiB (ids from a small pool, so most commits replace an
existing file) until the parent kills them. Every surviving file must be exactly the payload its
id determines; the kills that landed mid-commit leave orphans in .staging, which the janitor
handler removes. Replay a failure with CRASH_SEED=<seed printed by the test>.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import time
from typing import TYPE_CHECKING

import pytest
from crash_support import KIB, MIB, documents, fork_worker, payload
from testkit import FakeContext

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

SEED = int(os.environ.get("CRASH_SEED", "20261127"))
KILLS = 300
IDS = [f"doc-{n:02d}" for n in range(40)]
SIZES = (KIB, 16 * KIB, 256 * KIB, MIB, 4 * MIB)


def commit_forever(writer: ModuleType, rng: random.Random) -> None:
    context = FakeContext()
    for _ in itertools.count():
        response = writer.handler(payload(rng.choice(IDS), sizes=SIZES), context)
        assert response["statusCode"] == 200, response


@pytest.mark.slow
def test_sigkill_never_leaves_a_partial_document(
    writer: ModuleType, janitor: ModuleType, root: Path, context: FakeContext
) -> None:
    print(f"crash seed {SEED} (replay with CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    for kill in range(KILLS):
        worker_rng = random.Random(f"{SEED}/{kill}")
        pid = fork_worker(lambda worker_rng=worker_rng: commit_forever(writer, worker_rng))
        # 0-80 ms covers everything from "before the first create" to "mid 4 MiB write/fsync".
        time.sleep(rng.uniform(0, 0.08))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"worker {kill} exited on its own (status {status}): it failed"

    committed = documents(root)
    assert committed, "no commit completed: the kills came too early to test anything"
    for doc_id, path in committed.items():
        assert json.loads(path.read_bytes()) == payload(doc_id, sizes=SIZES), f"{path} is not intact"
    orphans = sorted((root / ".staging").iterdir())
    partial = sum(not _is_json(path) for path in orphans)
    print(f"{KILLS} kills: {len(committed)} documents intact, {len(orphans)} orphans ({partial} truncated)")
    assert orphans, "no kill landed mid-commit: nothing tested the crash path"
    assert all(path.suffix == ".tmp" and path.is_file() for path in orphans), orphans

    # Age the orphans past STAGING_MAX_AGE_SECONDS (default 960 s) and run the janitor handler.
    an_hour_ago = time.time() - 3600
    for path in orphans:
        os.utime(path, (an_hour_ago, an_hour_ago))
    response = janitor.handler({}, context)
    assert response == {
        "statusCode": 200,
        "removed": len(orphans),
        "kept": 0,
        "errors": 0,
        "truncated": False,
    }
    assert list((root / ".staging").iterdir()) == []
    assert documents(root) == committed


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True
