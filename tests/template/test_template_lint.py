"""Both templates pass cfn-lint (as written and as transformed, template.yaml in every mode),
sam validate and checkov."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from template_model import FUNCTIONS_TEMPLATE, REPO, TEMPLATE, load_sam_template

BIN = Path(sys.executable).parent
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
TEMPLATES = {"root": TEMPLATE, "functions": FUNCTIONS_TEMPLATE}


def _run(command: list[str | Path], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command],
        cwd=REPO,
        env=os.environ | {"SAM_CLI_TELEMETRY": "0"} | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cfn_lint_sam_templates() -> None:
    result = _run([BIN / "cfn-lint", *TEMPLATES.values()])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_transformed_templates(
    transformed: dict[str, dict[str, Any]], functions_transformed: dict[str, Any], tmp_path: Path
) -> None:
    """cfn-lint does not look inside AWS::Serverless::Function properties: lint what SAM generates."""
    paths = []
    for name, template in {**transformed, "functions": functions_transformed}.items():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(template, indent=1))
    result = _run([BIN / "cfn-lint", *paths])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=TEMPLATES.keys())
def test_sam_validate_lint(template: Path) -> None:
    result = _run([BIN / "sam", "validate", "--lint", "--template-file", template])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.fixture(scope="session", params=TEMPLATES, ids=TEMPLATES.keys())
def checkov_report(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """The template checkov scanned, and its report."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make venv` (checkov lives in its own venv)")
    template = TEMPLATES[request.param]
    result = _run(
        [CHECKOV, "-f", template, "--framework", "cloudformation", "--compact", "-o", "json"],
        BC_SKIP_MAPPING="TRUE",
    )
    assert result.stdout, result.stderr
    return template, json.loads(result.stdout)


def test_checkov_finds_no_failures(checkov_report: tuple[Path, dict[str, Any]]) -> None:
    _, report = checkov_report
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_checkov_skips_are_justified_and_used(checkov_report: tuple[Path, dict[str, Any]]) -> None:
    template, report = checkov_report
    declared = {
        (rid, skip["id"]): skip.get("comment", "")
        for rid, resource in load_sam_template(template)["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert declared, "expected the documented checkov skips in resource Metadata"
    for (rid, check_id), comment in declared.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), f"{rid}: malformed checkov id {check_id}"
        assert len(comment.split()) >= 5, f"{rid}: skip of {check_id} needs a reason a reviewer can judge"
    applied = {(c["resource"].split(".", 1)[1], c["check_id"]) for c in report["results"]["skipped_checks"]}
    assert set(declared) == applied, "a declared skip matches no checkov check: remove it"
