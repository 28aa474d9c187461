"""End-to-end fixtures: one `sam build` per session, and scripts/local_invoke.py loaded by path."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_invoke() -> ModuleType:
    """scripts/local_invoke.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("local_invoke", REPO / "scripts" / "local_invoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while creating the class.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` (not cached) of a clean copy of the application, once per session.

    A copy, so the repository's .aws-sam/ and samconfig.toml build settings play no part.
    """
    app = tmp_path_factory.mktemp("e2e-app")
    shutil.copy2(REPO / "template.yaml", app / "template.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for directory in ("functions", "layers"):
        shutil.copytree(REPO / directory, app / directory, ignore=ignore)
    python313 = [str(d) for d in (Path(sys.executable).parent, Path(sys.base_prefix) / "bin")]
    if not any((Path(d) / "python3.13").exists() for d in python313):
        pytest.fail(f"python3.13 not found in {python313}: install it with `pyenv install 3.13.0`")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--build-dir", str(app / "build")],
        cwd=app,
        env=os.environ
        | {"PATH": os.pathsep.join([*python313, os.environ["PATH"]]), "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return app / "build"


@pytest.fixture
def mount_root(tmp_path: Path) -> Path:
    """A fresh directory standing in for the S3 Files mount (local_invoke creates it)."""
    return tmp_path / "s3data"
