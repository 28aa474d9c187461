"""The README is the first hour: short, opening with the two commands that work on a fresh machine,
and every command it gives is run by a test (named here, so a new command needs its test)."""

from __future__ import annotations

import re

from testkit import REPO

README = (REPO / "README.md").read_text()
# Each command of the README's bash blocks: the file that runs it, and what that file must hold
# (how it types the command).
RUN_BY = {
    "make invoke": ("tests/e2e/test_make_targets.py", ['make(app, "invoke")']),
    "make test": (".ci/run", ["\nmake test\n"]),
    "make deploy": ("tests/e2e/test_make_targets.py", ['make(app, "deploy"']),
    "make verify STACK=s3files-lambda-dev": (
        "tests/e2e/test_make_targets.py",
        ['make(app, "verify", "STACK=s3files-lambda-dev"'],
    ),
    "make new-function NAME=report": (
        "tests/e2e/test_new_function.py",
        ['NAME = "report"', 'make(app, "new-function", f"NAME={NAME}")'],
    ),
    "make invoke FUNCTION=report": (
        "tests/e2e/test_new_function.py",
        ['NAME = "report"', 'make(scaffolded, "invoke", f"FUNCTION={NAME}")'],
    ),
}


def commands(text: str) -> list[str]:
    """The commands of the ```bash blocks of `text`, comments and padding removed."""
    blocks = re.findall(r"^```bash\n(.*?)^```$", text, re.M | re.S)
    lines = (line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line]


def test_the_readme_is_at_most_200_lines() -> None:
    assert len(README.splitlines()) <= 200


def test_the_readme_opens_with_the_two_commands() -> None:
    title, blank, fence = README.splitlines()[:3]
    assert title.startswith("# ") and not blank and fence == "```bash"
    assert commands(README)[:2] == ["make invoke", "make test"]
    # What they take and what the second starts, right below them.
    opening = " ".join(README[: README.index("\n## ")].split())
    assert "about a minute" in opening and "a few seconds" in opening
    assert "about 6 minutes on 2 cores" in opening and "Docker engine" in opening and "as root" in opening


def test_every_readme_command_is_run_by_a_test() -> None:
    assert set(commands(README)) == set(RUN_BY)
    for command, (path, evidence) in RUN_BY.items():
        text = (REPO / path).read_text()
        for snippet in evidence:
            assert snippet in text, f"README's {command!r}: {path} no longer holds {snippet!r}"
