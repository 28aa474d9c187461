"""`sam build` of a clean copy of the application: the layer lands where Lambda looks for it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from template_model import REPO

FUNCTIONS = ("WriterFunction", "ReaderFunction", "JanitorFunction")


def _python313_dirs() -> list[str]:
    """Directories holding python3.13: sam build needs the runtime's exact Python on PATH."""
    candidates = [Path(sys.base_prefix) / "bin", Path(sys.executable).parent]
    found = [str(d) for d in candidates if (d / "python3.13").exists()]
    if not found:
        pytest.fail(f"python3.13 not found in {candidates}: install it with `pyenv install 3.13.0`")
    return found


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `sam build` per session, from a copy without caches or earlier build output."""
    app = tmp_path_factory.mktemp("app")
    shutil.copy2(REPO / "template.yaml", app / "template.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for directory in ("functions", "layers"):
        shutil.copytree(REPO / directory, app / directory, ignore=ignore)
    built = app / "build"
    path = os.pathsep.join([str(Path(sys.executable).parent), *_python313_dirs(), os.environ.get("PATH", "")])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--parallel", "--build-dir", str(built)],
        cwd=app,
        env=os.environ | {"PATH": path, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return built


def test_layer_package_is_under_python(build_dir: Path) -> None:
    layer = build_dir / "SharedLayer"
    assert (layer / "python" / "s3files_store" / "__init__.py").is_file()
    assert (layer / "python" / "s3files_store" / "commit.py").is_file()
    assert not (layer / "python" / "python").exists(), "layer content nested twice: check ContentUri"


def test_layer_bundles_powertools(build_dir: Path) -> None:
    assert (build_dir / "SharedLayer" / "python" / "aws_lambda_powertools" / "__init__.py").is_file()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_handler_is_built(build_dir: Path, function: str) -> None:
    assert (build_dir / function / "app.py").is_file()


def test_built_template_points_at_build_output(build_dir: Path) -> None:
    built = (build_dir / "template.yaml").read_text()
    for name in (*FUNCTIONS, "SharedLayer"):
        assert f"CodeUri: {name}" in built or f"ContentUri: {name}" in built, f"{name} not rewritten"
