"""Handler test fixtures: a tmp mount root and captured stdout (handlers and context: tests/conftest.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from s3files_store import mount
from s3files_store.config import get_config
from s3files_store.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The mount root, set through the environment the way Lambda does, read at invoke time."""
    monkeypatch.setenv("MOUNT_ROOT", str(tmp_path))
    monkeypatch.setenv("REQUIRE_MOUNT", "false")
    get_config.cache_clear()
    mount.invalidate()
    yield tmp_path
    get_config.cache_clear()
    mount.invalidate()


class _CurrentStdout:
    """Writes to whatever sys.stdout is now (Powertools keeps the stream it saw at import)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def stdout_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[str]]:
    """The lines printed so far: JSON logs and EMF metric blobs."""
    monkeypatch.setattr(logger.registered_handler, "stream", _CurrentStdout())
    return lambda: capsys.readouterr().out.splitlines()
