from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from s3files_store.config import get_config
from s3files_store.exceptions import MountError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from testkit import FakeContext


def orphan(root: Path, name: str, age_seconds: float) -> Path:
    path = root / ".staging" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"partial")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_default_age_from_config(
    janitor: ModuleType, root: Path, context: FakeContext, stdout_lines: Callable[[], list[str]]
) -> None:
    old = orphan(root, "old.tmp", 2000)
    fresh = orphan(root, "fresh.tmp", 100)
    response = janitor.handler({"source": "aws.events"}, context)
    assert response == {"statusCode": 200, "removed": 1, "kept": 1, "errors": 0, "truncated": False}
    assert not old.exists() and fresh.exists()
    out = "\n".join(stdout_lines())
    assert '"message":"sweep finished"' in out
    assert '"StagingFilesRemoved":[1.0]' in out


def test_age_from_event(
    janitor: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMIT_TIMEOUT_SECONDS", "30")  # a stack whose only committer is the writer (30 s)
    get_config.cache_clear()
    orphan(root, "a.tmp", 200)
    response = janitor.handler({"older_than_seconds": 100}, context)
    assert response["removed"] == 1


def test_age_younger_than_a_running_commit_is_400(
    janitor: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMIT_TIMEOUT_SECONDS", "30")
    get_config.cache_clear()
    live = orphan(root, "live.tmp", 5)
    response = janitor.handler({"older_than_seconds": 1}, context)
    assert response["statusCode"] == 400
    assert "from 90 to" in response["error"] and "COMMIT_TIMEOUT_SECONDS" in response["error"]
    assert live.exists()


@pytest.mark.parametrize("event", [[], "sweep", 7])
def test_event_that_is_not_an_object_is_400(
    janitor: ModuleType, root: Path, context: FakeContext, event: Any
) -> None:
    old = orphan(root, "old.tmp", 5000)
    response = janitor.handler(event, context)
    assert response["statusCode"] == 400
    assert "must be a JSON object" in response["error"]
    assert old.exists()


def test_bound_from_config(
    janitor: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JANITOR_MAX_DELETIONS", "2")
    get_config.cache_clear()
    for i in range(4):
        orphan(root, f"{i}.tmp", 2000)
    response = janitor.handler({}, context)
    assert (response["removed"], response["truncated"]) == (2, True)


@pytest.mark.parametrize("value", [0, -5, "60", 1.5, True])
def test_bad_age_is_400(janitor: ModuleType, root: Path, context: FakeContext, value: Any) -> None:
    orphan(root, "a.tmp", 5000)
    response = janitor.handler({"older_than_seconds": value}, context)
    assert response["statusCode"] == 400
    assert "older_than_seconds" in response["error"]
    assert (root / ".staging" / "a.tmp").exists()


def test_missing_mount_raises(
    janitor: ModuleType, root: Path, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOUNT_ROOT", str(root / "absent"))
    get_config.cache_clear()
    with pytest.raises(MountError):
        janitor.handler({}, context)
