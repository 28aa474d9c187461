"""`sam build` of a clean copy of the application (tests/conftest.py): the layer lands where Lambda looks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FUNCTIONS = ("WriterFunction", "ReaderFunction", "JanitorFunction")


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


@pytest.mark.parametrize("package", ["s3files_store", "aws_lambda_powertools"])
def test_layer_ships_unchecked_hash_bytecode(build_dir: Path, package: str) -> None:
    # Lambda's /opt is read-only: without .pyc every cold start compiles the layer. Flags 0b01 in
    # the header (PEP 552): hash-based and unchecked, so unzipped file times cannot invalidate them.
    sources = sorted((build_dir / "SharedLayer" / "python" / package).rglob("*.py"))
    assert sources
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        assert compiled.is_file(), f"{source} has no .pyc"
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
