"""`make new-function NAME=...`: its checks of the name, and the scaffold itself, run in a clean copy
of the project, after which (with no other edit) `make invoke` answers 200 and the template checks,
the new unit test and the end-to-end test of its sample event pass there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from new_function import ScaffoldError, check_name, scaffold
from testkit import REPO, copy_project, run_make

NAME = "report"
TEMPLATES = ("functions/template.yaml", "template.yaml")
# The tests the scaffold must leave green, run in the copy: the template checks, cfn-lint of the
# templates as written, the new handler's unit test, and its sample event end to end.
CHECKS = [
    "tests/template/test_template_checks.py",
    "tests/template/test_template_parameters.py",
    "tests/template/test_template_lint.py::test_cfn_lint_sam_templates",
    f"tests/functions/test_{NAME}_handler.py",
    "tests/e2e/test_e2e_invoke.py::test_every_sample_event_has_its_promise_in_events_readme",
    f"tests/e2e/test_e2e_invoke.py::test_each_sample_event_answers_what_events_readme_promises[{NAME}.json]",
    "tests/e2e/test_e2e_invoke.py::test_env_file_declares_only_variables_the_template_declares",
]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Report", "function name 'Report' is invalid: use 2-30 lowercase letters and digits"),
        ("daily-report", "function name 'daily-report' is invalid"),
        ("2fa", "function name '2fa' is invalid"),
        ("r", "function name 'r' is invalid"),
        ("r" * 31, "is invalid"),
        ("writer", "a function named 'writer' exists already (WriterFunction in functions/template.yaml)"),
        ("janitor", "a function named 'janitor' exists already"),
    ],
)
def test_a_bad_or_taken_name_is_refused_with_the_reason(name: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=re.escape(message)):
        check_name(REPO, name)


def _skeleton(project: Path) -> Path:
    """What the scaffold reads and changes, copied from the project."""
    for name in ("template.yaml", "functions/template.yaml", "events/README.md", "pyproject.toml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, project / name)
    return project


def test_a_name_whose_files_or_resources_exist_is_refused(tmp_path: Path) -> None:
    _skeleton(tmp_path)
    check_name(tmp_path, NAME)
    (tmp_path / "events" / f"{NAME}-monthly.json").write_text("{}")
    with pytest.raises(ScaffoldError, match=f"events/{NAME}-monthly.json exist"):
        check_name(tmp_path, NAME)
    (tmp_path / "events" / f"{NAME}-monthly.json").unlink()
    root = tmp_path / "template.yaml"
    root.write_text(root.read_text().replace("  FileSystem:\n", "  ReportLogGroup:\n", 1))
    with pytest.raises(ScaffoldError, match=re.escape("template.yaml already has ReportLogGroup")):
        check_name(tmp_path, NAME)


def test_the_code_it_writes_is_lint_clean_whatever_the_name_length(tmp_path: Path) -> None:
    name = "a" * 30  # the longest name: no generated line may outgrow the line length
    written = [p for p in scaffold(_skeleton(tmp_path), name) if p.suffix == ".py"]
    assert len(written) == 2
    ruff = Path(sys.executable).parent / "ruff"
    for command in (["check"], ["format", "--check"]):
        arguments = [str(ruff), *command, *map(str, written)]
        done = subprocess.run(arguments, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def make(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_make(app, *args, timeout=600)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean copy of the project with the project's venv, after `make new-function NAME=report`."""
    app = copy_project(tmp_path_factory.mktemp("scaffold") / "app")
    (app / ".venv").symlink_to(Path(sys.executable).parent.parent)
    done = make(app, "new-function", f"NAME={NAME}")
    assert done.returncode == 0, done.stderr
    assert f"wrote functions/{NAME}/app.py" in done.stdout
    return app


@pytest.mark.slow
def test_after_the_scaffold_make_invoke_answers_200(scaffolded: Path) -> None:
    done = make(scaffolded, "invoke", f"FUNCTION={NAME}")
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout[done.stdout.index("{") :])
    event = json.loads((scaffolded / "events" / f"{NAME}.json").read_text())
    assert body["statusCode"] == 200
    assert body["key"] == event["key"]
    committed = scaffolded / ".local" / "s3data" / event["key"]
    assert json.loads(committed.read_bytes()) == event["document"]


@pytest.mark.slow
def test_after_the_scaffold_the_checks_and_tests_pass(scaffolded: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHECKS],
        cwd=scaffolded,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
    # make lint's type check of every handler.
    mypy = [str(Path(sys.executable).parent / "mypy"), "--strict", f"functions/{NAME}/app.py"]
    done = subprocess.run(
        mypy, cwd=scaffolded, env=os.environ | {"MYPYPATH": "layers/shared"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_scaffolding_the_same_name_again_is_refused_and_changes_nothing(scaffolded: Path) -> None:
    template = (scaffolded / "functions" / "template.yaml").read_text()
    done = make(scaffolded, "new-function", f"NAME={NAME}")
    assert done.returncode == 2
    assert f"a function named '{NAME}' exists already (ReportFunction in" in done.stderr
    assert (scaffolded / "functions" / "template.yaml").read_text() == template


def test_the_guide_says_how_many_template_lines_a_function_adds(tmp_path: Path) -> None:
    project = _skeleton(tmp_path)
    before = {name: len((project / name).read_text().splitlines()) for name in TEMPLATES}
    scaffold(project, NAME)
    added = {name: len((project / name).read_text().splitlines()) - before[name] for name in TEMPLATES}
    guide = " ".join((REPO / "docs" / "extending.md").read_text().split())  # whatever the line breaks
    functions, root = added["functions/template.yaml"], added["template.yaml"]
    assert f"adds {functions + root} lines of YAML: {functions} to `functions/template.yaml`" in guide
    assert f"the {root} lines of `template.yaml`" in guide
