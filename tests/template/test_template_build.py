"""`sam build` of a clean copy of the application (tests/conftest.py): the layer lands where Lambda looks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

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
