"""The janitor against commits whose fsync is slow (as on a loaded NFS server): it never removes a
live staging file, and a commit whose staging file was removed anyway says exactly that."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest
from crash_support import fork_worker
from testkit import FakeContext

from s3files_store.config import get_config
from s3files_store.exceptions import StorageError

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

SLOW_FSYNC_SECONDS = 1.5


@pytest.fixture
def writer_timeout(monkeypatch: pytest.MonkeyPatch, root: Path) -> int:
    """What the template passes to the janitor: the writer's Timeout."""
    monkeypatch.setenv("COMMIT_TIMEOUT_SECONDS", "30")
    get_config.cache_clear()
    return 30


def slow_commits(writer: ModuleType, count: int) -> None:
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(SLOW_FSYNC_SECONDS)
        real_fsync(fd)

    os.fsync = slow_fsync
    for i in range(count):
        assert writer.handler({"id": f"slow-{i}"}, FakeContext())["statusCode"] == 200


def test_sweeps_during_slow_commits_remove_nothing_live(
    writer: ModuleType, janitor: ModuleType, root: Path, writer_timeout: int
) -> None:
    worker = fork_worker(lambda: slow_commits(writer, 2))
    seen_staging = refused = 0
    while True:
        done, status = os.waitpid(worker, os.WNOHANG)
        if done:
            break
        seen_staging += len(list((root / ".staging").glob("*.tmp"))) if (root / ".staging").exists() else 0
        # The request that deleted every live staging file before: now refused, nothing removed.
        response = janitor.handler({"older_than_seconds": 1}, FakeContext())
        refused += response["statusCode"] == 400
        assert janitor.handler({}, FakeContext())["removed"] == 0
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0, "a slow commit failed"
    assert seen_staging > 0, "no sweep overlapped a commit: the test proves nothing"
    assert refused > 0
    assert sorted(p.name for p in root.rglob("slow-*.json")) == ["slow-0.json", "slow-1.json"]


def test_a_commit_whose_staging_file_vanished_says_so(
    writer: ModuleType, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def rogue_sweep_then_fsync(fd: int) -> Any:
        for orphan in (root / ".staging").glob("*.tmp"):
            orphan.unlink()
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", rogue_sweep_then_fsync)
    with pytest.raises(StorageError, match=r"staging file \.staging/\w+\.tmp was removed before the rename"):
        writer.handler({"id": "victim"}, FakeContext())
    monkeypatch.undo()
    assert not list(root.rglob("victim.json"))
