"""Handler test fixtures: captured stdout (handlers, context and mount root: tests/conftest.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from s3files_store.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable


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
