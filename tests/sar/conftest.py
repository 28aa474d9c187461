"""Fixtures for the SAR tests: functions/template.yaml, the application published as it is."""

from __future__ import annotations

from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse
from testkit import REPO


@pytest.fixture(scope="session")
def functions_template() -> dict[str, Any]:
    return yaml_parse((REPO / "functions" / "template.yaml").read_text(encoding="utf-8"))
