"""What the sam local tier's fixtures and tests share: paths, the sam command, one invocation's result."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import local_invoke  # scripts/ is on sys.path: conftest.py
import pytest
from testkit import REPO

EVENTS = REPO / "events"
ENV_FILE = EVENTS / "env.json"
LOGICAL_IDS = local_invoke.LOGICAL_IDS  # the one map from function to logical id
SAM = Path(sys.executable).parent / "sam"
INVOKE_TIMEOUT_SECONDS = 180
MUST_RUN = ("CI", "SAM_LOCAL_REQUIRED")


def sam_function_id(function: str) -> str:
    """The id `sam local invoke` takes: the functions sit in the nested stack (`Functions/WriterFunction`)."""
    return f"{local_invoke.FUNCTIONS_STACK}/{LOGICAL_IDS[function]}"


def cannot_run(reason: str) -> NoReturn:
    """Under CI (.ci/run) and `make sam-local` the tier fails where it cannot run; elsewhere it skips."""
    if any(os.environ.get(name, "").lower() not in {"", "0", "false", "no"} for name in MUST_RUN):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def mount_root() -> str:
    """Where env.json puts MOUNT_ROOT in every function container."""
    return str(json.loads(ENV_FILE.read_text())["Parameters"]["MOUNT_ROOT"])


@dataclass(frozen=True)
class Invocation:
    body: Any  # the function's answer, as `sam local invoke` prints it on stdout
    exit_code: int  # 0 even when the function raised: never the verdict
    logs: str
