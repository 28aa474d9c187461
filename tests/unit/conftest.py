"""Fixtures for the s3files_store unit tests: a mount root in tmp_path, read-only remounts, staging."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from s3files_store import mount
from s3files_store.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _fresh_mount_cache() -> Iterator[None]:
    mount.invalidate()
    yield
    mount.invalidate()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(mount_root=tmp_path)


@pytest.fixture
def remount_read_only() -> Callable[[Path], None]:
    def _remount(target: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)

    return _remount


@pytest.fixture
def staged() -> Callable[[Path], list[Path]]:
    """Lists the staging files under a root (none must survive a finished commit)."""

    def _staged(root: Path) -> list[Path]:
        staging = root / ".staging"
        return sorted(staging.iterdir()) if staging.exists() else []

    return _staged
