"""Session-wide transforms of both templates: each network/feature mode is transformed once, and
composed into the stack CloudFormation would create (template_model.compose)."""

from __future__ import annotations

from typing import Any

import pytest
from template_model import FUNCTIONS_TEMPLATE, MODES, compose, load_sam_template, resolve
from testkit import transform


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def functions_template() -> dict[str, Any]:
    return load_sam_template(FUNCTIONS_TEMPLATE)


@pytest.fixture(scope="session")
def transformed(sam_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """samtranslator output of template.yaml per mode name (conditions unresolved, as CloudFormation
    receives it)."""
    return {mode: transform(sam_template, overrides) for mode, overrides in MODES.items()}


@pytest.fixture(scope="session")
def functions_transformed(functions_template: dict[str, Any]) -> dict[str, Any]:
    """samtranslator output of functions/template.yaml (its parameters are resolved per mode later)."""
    return transform(functions_template, {})


@pytest.fixture(scope="session")
def resolved(
    transformed: dict[str, dict[str, Any]], functions_transformed: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The composed stack per mode with its conditions applied (read-only: copy before mutating)."""
    return {mode: compose(resolve(transformed[mode], MODES[mode]), functions_transformed) for mode in MODES}
