"""Crash test fixtures: the real handlers, loaded by path, over a tmp mount root."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from crash_support import FakeContext, load_handler

from s3files_store import mount
from s3files_store.config import get_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType


@pytest.fixture(scope="session")
def writer() -> ModuleType:
    return load_handler("writer")


@pytest.fixture(scope="session")
def reader() -> ModuleType:
    return load_handler("reader")


@pytest.fixture(scope="session")
def janitor() -> ModuleType:
    return load_handler("janitor")


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


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()
