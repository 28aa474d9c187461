"""Fixtures for the SAR tests: scripts/sar.py as a module, and its output for the real template.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from samcli.yamlhelper import yaml_dump, yaml_parse
from testkit import load_module

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sar() -> ModuleType:
    return load_module("sar", ROOT / "scripts" / "sar.py")


@pytest.fixture(scope="session")
def root_template() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def derived_path(sar: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/sar/template.yaml as `scripts/sar.py derive` writes it, here under a temporary directory."""
    out = tmp_path_factory.mktemp("sar") / "build" / "sar" / "template.yaml"
    sar.derive_file(ROOT / "template.yaml", out)
    return out


@pytest.fixture(scope="session")
def derived(derived_path: Path) -> dict[str, Any]:
    return yaml_parse(derived_path.read_text(encoding="utf-8"))


@pytest.fixture
def packaged(derived: dict[str, Any]) -> dict[str, Any]:
    """The derived template as `sam package` leaves it: every local path replaced by an s3:// URI."""
    template = yaml_parse(yaml_dump(derived))
    metadata = template["Metadata"]["AWS::ServerlessRepo::Application"]
    metadata["LicenseUrl"] = "s3://artifacts/license-0123"
    metadata["ReadmeUrl"] = "s3://artifacts/readme-4567"
    for name, resource in template["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{name}.zip"
    return template
