"""template.yaml passes cfn-lint (as written and as transformed, in every mode), sam validate and checkov."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from template_model import REPO, TEMPLATE

BIN = Path(sys.executable).parent
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


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


def test_cfn_lint_sam_template() -> None:
    result = _run([BIN / "cfn-lint", TEMPLATE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_transformed_templates(transformed: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """cfn-lint does not look inside AWS::Serverless::Function properties: lint what SAM generates."""
    paths = []
    for mode, template in transformed.items():
        paths.append(tmp_path / f"{mode}.json")
        paths[-1].write_text(json.dumps(template, indent=1))
    result = _run([BIN / "cfn-lint", *paths])
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint() -> None:
    result = _run([BIN / "sam", "validate", "--lint", "--template-file", TEMPLATE])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make venv` (checkov lives in its own venv)")
    result = _run(
        [CHECKOV, "-f", TEMPLATE, "--framework", "cloudformation", "--compact", "-o", "json"],
        BC_SKIP_MAPPING="TRUE",
    )
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_checkov_finds_no_failures(checkov_report: dict[str, Any]) -> None:
    failed = [
        (c["check_id"], c["resource"], c["check_name"]) for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 0


def test_checkov_skips_are_justified_and_used(
    sam_template: dict[str, Any], checkov_report: dict[str, Any]
) -> None:
    declared = {
        (rid, skip["id"]): skip.get("comment", "")
        for rid, resource in sam_template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert declared, "expected the documented checkov skips in resource Metadata"
    for (rid, check_id), comment in declared.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), f"{rid}: malformed checkov id {check_id}"
        assert len(comment.split()) >= 5, f"{rid}: skip of {check_id} needs a reason a reviewer can judge"
    applied = {
        (c["resource"].split(".", 1)[1], c["check_id"]) for c in checkov_report["results"]["skipped_checks"]
    }
    assert set(declared) == applied, "a declared skip matches no checkov check: remove it"
