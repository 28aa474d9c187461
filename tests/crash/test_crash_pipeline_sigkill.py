"""SIGKILL an upload's extraction at seeded points, then deliver the event again: complete members
only after the kill, and after the retry every member byte for byte and one manifest.

Each round kills a worker running the pipeline on the sample upload event after its k-th commit
(the manifest's commit is the last). In "pause" rounds the worker stops right after that commit
until it is killed, so the state the retry finds is known exactly (k members, and the manifest
only when k counts it); these rounds go through every k once. In "run" rounds k is seeded, the
worker keeps going and the kill comes a seeded 0-30 ms later, anywhere in the next member's
inflate, write, fsync or rename. Replay with CRASH_SEED=<seed>.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import signal
import time
import zipfile
from typing import TYPE_CHECKING

import pytest
from crash_support import MIB, fork_worker
from testkit import EVENTS

from s3files_store.commit import Staging
from s3files_store.config import Config
from s3files_store.pipeline import parse_request, read_manifest, run

if TYPE_CHECKING:
    from pathlib import Path

    from s3files_store.commit import CommitResult

SEED = int(os.environ.get("CRASH_SEED", "20261202"))
ROUNDS = 16
MEMBER_COUNT = 6
ARCHIVE = "uploads/2026/12/01/data.zip"
DESTINATION = "extracted/2026/12/01/data"
MANIFEST = f"{DESTINATION}.manifest.json"


def plenty() -> int:
    return 600_000


def extract_with_signals(
    config: Config, event: dict[str, object], done: int, hold: int | None, commits: int
) -> None:
    """In the worker: run the pipeline, writing one byte to ``done`` after each commit, and, when
    ``hold`` is given, waiting on it (forever: nobody writes) after commit number ``commits``."""
    publish = Staging.publish
    count = 0

    def signalling(self: Staging, size: int, digest: object) -> CommitResult:
        nonlocal count
        result = publish(self, size, digest)  # type: ignore[arg-type]
        count += 1
        os.write(done, b".")
        if hold is not None and count == commits:
            os.read(hold, 1)
        return result

    Staging.publish = signalling  # type: ignore[method-assign]
    run(parse_request(event, config), config, plenty)


@pytest.mark.slow
def test_sigkill_during_an_extraction_then_the_retry_completes_it_once(tmp_path: Path) -> None:
    print(f"crash seed {SEED} (replay with CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    root = tmp_path / "s3data"
    config = Config(mount_root=root)
    members = {f"part-{n}.bin": random.Random(f"{SEED}/{n}").randbytes(2 * MIB) for n in range(MEMBER_COUNT)}
    archive = root / ARCHIVE
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    event = copy.deepcopy(json.loads((EVENTS / "unzip-upload.json").read_text()))
    event["detail"]["object"] |= {"size": archive.stat().st_size, "version-id": "v-crash"}
    expected = {f"{DESTINATION}/{name}": data for name, data in members.items()}
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    partial_rounds = 0

    for round_number in range(ROUNDS):
        shutil.rmtree(root / "extracted", ignore_errors=True)
        how = "pause" if round_number % 2 == 0 else "run"
        # Pause rounds go through every count, 0 to the manifest's commit (the last): each state once.
        commits = round_number // 2 if how == "pause" else rng.randint(0, MEMBER_COUNT + 1)
        done_r, done_w = os.pipe()
        hold_r, hold_w = os.pipe()
        hold = hold_r if how == "pause" else None
        pid = fork_worker(
            lambda done=done_w, hold=hold, commits=commits: extract_with_signals(
                config, event, done, hold, commits
            )
        )
        os.close(done_w)
        for n in range(commits):
            assert os.read(done_r, 1) == b".", f"round {round_number}: the worker died before commit {n + 1}"
        if how == "run":
            time.sleep(rng.uniform(0, 0.03))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        for fd in (done_r, hold_r, hold_w):
            os.close(fd)
        assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, f"round {round_number}: worker failed"

        # After the kill: complete members only, and a manifest only once every member is there.
        found = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in (root / "extracted").rglob("*")
            if path.is_file()
        }
        manifest = read_manifest(config, MANIFEST)
        members_found = {key: data for key, data in found.items() if key != MANIFEST}
        assert all(expected[key] == data for key, data in members_found.items()), (
            f"round {round_number}: torn"
        )
        if manifest is not None:
            assert members_found == expected and manifest["sha256"] == sha256
        if how == "pause":
            assert len(members_found) == min(commits, MEMBER_COUNT), f"round {round_number}"
            assert (manifest is not None) == (commits == MEMBER_COUNT + 1), f"round {round_number}"
        partial_rounds += 0 < len(members_found) < MEMBER_COUNT

        # The retry (Lambda's, or a duplicate delivery) finishes the job, once.
        outcome = run(parse_request(event, config), config, plenty)
        assert (outcome.extraction is None) == (manifest is not None), f"round {round_number}"
        after = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in (root / "extracted").rglob("*")
            if path.is_file()
        }
        assert after.keys() == {*expected, MANIFEST}, f"round {round_number}"
        assert {key: after[key] for key in expected} == expected, f"round {round_number}: not byte-exact"
        assert read_manifest(config, MANIFEST) == outcome.manifest
        assert outcome.manifest["sha256"] == sha256 and outcome.manifest["version_id"] == "v-crash"

    orphans = list((root / ".staging").iterdir())
    print(f"{ROUNDS} kills: {partial_rounds} left a partial extraction, {len(orphans)} staging orphans")
    assert partial_rounds >= 1, "no kill left a partial extraction: the test proved nothing"
    assert len(orphans) <= ROUNDS  # at most one per kill, for the janitor
