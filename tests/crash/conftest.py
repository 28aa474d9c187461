"""Crash test fixtures: a tmp mount root (the handlers come from tests/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from s3files_store import mount
from s3files_store.config import get_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The mount root, passed the way Lambda does: environment read by the handler at invoke time."""
    directory = tmp_path / "s3data"
    directory.mkdir()
    monkeypatch.setenv("MOUNT_ROOT", str(directory))
    monkeypatch.setenv("REQUIRE_MOUNT", "false")
    get_config.cache_clear()
    mount.invalidate()
    yield directory
    get_config.cache_clear()
    mount.invalidate()
