"""End-to-end fixtures: scripts/local_invoke.py as a module and a fresh mount root (the session's
`sam build` comes from tests/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from testkit import REPO, load_module

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType


@pytest.fixture(scope="session")
def local_invoke() -> ModuleType:
    return load_module("local_invoke", REPO / "scripts" / "local_invoke.py")


@pytest.fixture
def mount_root(tmp_path: Path) -> Path:
    """A fresh directory standing in for the S3 Files mount (local_invoke creates it)."""
    return tmp_path / "s3data"
