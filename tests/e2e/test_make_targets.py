"""`make invoke` as a user types it, in a clean copy of the project with the session's build (make
runs neither the venv install nor `sam build` here: -o): exit codes as make reports them, the answer
alone on stdout, hints in make's terms. And the other make targets' first words to a user without
credentials."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from testkit import copy_project, no_account, run_make

if TYPE_CHECKING:
    import subprocess


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, build_dir: Path) -> Path:
    app = copy_project(tmp_path_factory.mktemp("make") / "app")
    (app / ".venv").symlink_to(Path(sys.executable).parent.parent)
    shutil.copytree(build_dir, app / ".aws-sam" / "build", symlinks=True)
    return app


def make(app: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """make in the copy, its build taken as done (-o build)."""
    return run_make(app, "-o", "build", *args, env=env)


def test_make_invoke_alone_commits_the_writers_sample_event(app: Path) -> None:
    # The README's first command, as typed: no FUNCTION, no EVENT.
    done = make(app, "invoke")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    committed = Path(answer["committed_path"])
    assert committed.is_relative_to(app / ".local" / "s3data")
    assert json.loads(committed.read_bytes()) == json.loads((app / "events" / "writer.json").read_bytes())


def test_a_success_exits_0_with_the_answer_alone_on_stdout(app: Path) -> None:
    done = make(app, "invoke", "EVENT=events/writer-with-id.json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # `make invoke | jq` works: nothing else on stdout
    assert answer["statusCode"] == 200
    assert f"committed: {answer['committed_path']}" in done.stderr


def test_a_function_failure_exits_2_through_make(app: Path) -> None:
    # The script exits 1; make reports it in its own line and exits 2, as for any failed recipe.
    done = make(app, "invoke", "EVENT=events/writer-invalid-id.json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["statusCode"] == 400
    assert "error: the function answered statusCode 400." in done.stderr
    assert done.stderr.rstrip().endswith("invoke] Error 1"), done.stderr


def test_a_setup_failure_exits_2_with_a_hint_in_make_terms(app: Path) -> None:
    done = make(app, "invoke", "EVENT=events/writer-missing.json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Pass EVENT=<a JSON file>." in done.stderr and "--event" not in done.stderr
    assert done.stderr.rstrip().endswith("invoke] Error 2"), done.stderr
    done = make(app, "invoke", "FUNCTION=writer", "EVENT=events/reader-list.json")
    assert done.returncode == 2
    assert "pass FUNCTION=reader (or no function)" in done.stderr and "--function" not in done.stderr


def test_make_help_lists_every_target_a_user_runs(app: Path) -> None:
    done = make(app, "help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("make ")}
    assert {"venv", "invoke", "test", "lint", "build", "deploy", "delete", "publish", "clean"} <= listed


def test_make_deploy_without_credentials_does_not_offer_to_skip_the_preflight(app: Path) -> None:
    # Skipping the preflight cannot help: sam deploy needs credentials too.
    done = make(app, "deploy", env=no_account())
    assert done.returncode == 2
    assert "[FAIL] AWS credentials and Region" in done.stdout
    assert "no AWS credentials found" in done.stdout and "no AWS Region" not in done.stdout
    assert "SKIP_PREFLIGHT" not in done.stdout + done.stderr
    assert "make deploy: stopped before creating anything. Fix the lines above" in done.stderr


def test_make_verify_hints_name_args(app: Path) -> None:
    env = no_account()
    del env["AWS_DEFAULT_REGION"], env["AWS_REGION"]
    done = make(app, "verify", "STACK=s3files-lambda-dev", env=env)
    assert done.returncode == 2
    assert '(ARGS="--profile <profile>", or AWS_ACCESS_KEY_ID' in done.stderr
    assert 'a Region (ARGS="--region <region>")' in done.stderr
