"""Hints name options the way the user gives them: to the script as they are, under make the way
the target takes them (the Makefile exports OPTIONS_HINT for verify, preflight and deploy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from s3files_ops.checklist import connect_fix, option, stack_options

if TYPE_CHECKING:
    import pytest


def test_to_the_script_options_are_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPTIONS_HINT", raising=False)
    assert option("--region <region>") == "--region <region>"
    assert stack_options() == "--stack <name> --region <region> --profile <profile>"
    assert "(--profile <profile>, or AWS_ACCESS_KEY_ID" in connect_fix()


def test_make_verify_and_make_preflight_take_them_in_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONS_HINT", 'ARGS="%s"')
    assert option("--wait-seconds 900") == 'ARGS="--wait-seconds 900"'
    assert stack_options() == 'STACK=<name> ARGS="--region <region> --profile <profile>"'
    assert 'a Region (ARGS="--region <region>")' in connect_fix()


def test_make_deploy_sends_what_ifs_to_make_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONS_HINT", 'make preflight ARGS="%s"')
    assert option("--vpc-id <vpc-id>") == 'make preflight ARGS="--vpc-id <vpc-id>"'
