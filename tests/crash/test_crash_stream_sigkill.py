"""SIGKILL processes in the middle of large streaming commits: no final file is ever partial.

Workers stream files of 4 to 64 MiB (a kernel copy of a path, a copy of an open file, or
out.write() in uneven pieces) onto a few keys, over and over, until the parent kills them at a
random moment: mid-copy, mid-hash, mid-fsync, mid-rename. Every final file must then be exactly one
of the source files, byte for byte; each kill leaves at most one staging file, which the janitor
handler removes. Replay a failure with CRASH_SEED=<seed printed by the test>.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from typing import TYPE_CHECKING

import pytest
from crash_support import MIB, fork_worker

from s3files_store.stream import atomic_writer, commit_file

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext

SEED = int(os.environ.get("CRASH_SEED", "20261201"))
KILLS = 40
KEYS = [f"exports/2026/12/01/part-{n}.bin" for n in range(3)]
SIZES = (4 * MIB, 16 * MIB, 64 * MIB)


def stream_forever(root: Path, sources: list[Path], rng: random.Random) -> None:
    while True:
        source, key, how = rng.choice(sources), rng.choice(KEYS), rng.choice(["path", "file", "write"])
        if how == "path":
            commit_file(root, key, source)
            continue
        with source.open("rb") as file:
            if how == "file":
                commit_file(root, key, file)
                continue
            with atomic_writer(root, key) as out:
                while piece := file.read(rng.randint(1, 3 * MIB)):
                    out.write(piece)


@pytest.mark.slow
def test_sigkill_never_leaves_a_partial_streamed_file(
    janitor: ModuleType, root: Path, tmp_path: Path, context: FakeContext
) -> None:
    print(f"crash seed {SEED} (replay with CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    sources = []
    for n, size in enumerate(SIZES):
        block = random.Random(f"{SEED}/{n}").randbytes(MIB)
        path = tmp_path / f"source-{n}.bin"
        path.write_bytes(block * (size // MIB))
        sources.append(path)
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in sources}

    for kill in range(KILLS):
        worker_rng = random.Random(f"{SEED}/worker/{kill}")
        pid = fork_worker(lambda worker_rng=worker_rng: stream_forever(root, sources, worker_rng))
        # 0-1.5 s: anything from before the first create to the middle of a 64 MiB fsync.
        time.sleep(rng.uniform(0, 1.5))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"worker {kill} exited on its own (status {status}): it failed"

    finals = [root / key for key in KEYS if (root / key).exists()]
    assert finals, "no streaming commit completed: the kills came too early to test anything"
    for path in finals:
        assert hashlib.sha256(path.read_bytes()).hexdigest() in digests, f"{path} is partial or mixed"
    orphans = sorted((root / ".staging").iterdir())
    sizes = sorted(path.stat().st_size for path in orphans)
    print(f"{KILLS} kills: {len(finals)} final files intact, {len(orphans)} orphans (bytes: {sizes})")
    assert 0 < len(orphans) <= KILLS, "each kill may leave at most one staging file"
    assert all(path.suffix == ".tmp" and path.is_file() for path in orphans)
    assert any(size not in {s.stat().st_size for s in sources} for size in sizes), (
        "no kill landed mid-stream: nothing tested the crash path"
    )

    an_hour_ago = time.time() - 3600
    for path in orphans:
        os.utime(path, (an_hour_ago, an_hour_ago))
    response = janitor.handler({}, context)
    assert (response["statusCode"], response["removed"], response["errors"]) == (200, len(orphans), 0)
    assert list((root / ".staging").iterdir()) == []
