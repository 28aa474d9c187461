"""Handler test fixtures: load functions/<name>/app.py by path, a tmp mount root, a fake context."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from s3files_store import mount
from s3files_store.config import get_config
from s3files_store.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@dataclass
class FakeContext:
    """The LambdaContext attributes the handlers and Powertools use."""

    aws_request_id: str = "8c5a9b2e-1f3d-4d8a-9c1e-0123456789ab"
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb: int = 512
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/27/[$LATEST]0123"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_handler(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (all three files are app.py)."""
    spec = importlib.util.spec_from_file_location(f"{name}_app", FUNCTIONS / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    """The mount root, set through the environment the way Lambda does, read at invoke time."""
    monkeypatch.setenv("MOUNT_ROOT", str(tmp_path))
    monkeypatch.setenv("REQUIRE_MOUNT", "false")
    get_config.cache_clear()
    mount.invalidate()
    yield tmp_path
    get_config.cache_clear()
    mount.invalidate()


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


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
