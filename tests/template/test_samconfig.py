"""samconfig.toml: a dev [default] and a [prod] environment whose overrides the template accepts."""

from __future__ import annotations

import shlex
import tomllib
from typing import Any

import pytest
from template_model import REPO, allowed

ENVIRONMENTS = {"default": ("s3files-lambda-dev", False), "prod": ("s3files-lambda-prod", True)}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return tomllib.loads((REPO / "samconfig.toml").read_text())


def test_version(samconfig: dict[str, Any]) -> None:
    assert samconfig["version"] == 0.1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_settings(samconfig: dict[str, Any], env: str) -> None:
    stack, confirm = ENVIRONMENTS[env]
    deploy = samconfig[env]["deploy"]["parameters"]
    assert deploy["stack_name"] == stack
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is confirm
    tags = dict(tag.split("=", 1) for tag in shlex.split(deploy["tags"]))
    assert tags["env"] == ("prod" if env == "prod" else "dev")
    assert tags["project"]
    assert samconfig[env]["delete"]["parameters"]["stack_name"] == stack


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_build_and_validate_settings(samconfig: dict[str, Any], env: str) -> None:
    assert samconfig[env]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert samconfig[env]["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_overrides_are_accepted(
    samconfig: dict[str, Any], sam_template: dict[str, Any], env: str
) -> None:
    overrides = dict(
        item.split("=", 1)
        for item in shlex.split(samconfig[env]["deploy"]["parameters"]["parameter_overrides"])
    )
    assert overrides
    for name, value in overrides.items():
        assert name in sam_template["Parameters"], f"{env}: unknown parameter {name}"
        assert allowed(sam_template["Parameters"][name], value), f"{env}: {name}={value} is rejected"
