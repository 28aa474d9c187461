"""Session-wide transforms of template.yaml: each network/feature mode is transformed once."""

from __future__ import annotations

from typing import Any

import pytest
from template_model import MODES, load_sam_template, resolve
from testkit import transform


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def transformed(sam_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """samtranslator output per mode name (conditions unresolved, as CloudFormation receives it)."""
    return {mode: transform(sam_template, overrides) for mode, overrides in MODES.items()}


@pytest.fixture(scope="session")
def resolved(transformed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The transformed template per mode with its conditions applied (read-only: copy before mutating)."""
    return {mode: resolve(transformed[mode], MODES[mode]) for mode in MODES}
