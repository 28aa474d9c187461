"""The `sam local` tier: the project's private Docker engine, the stand-in base image and the
session's `sam build` (tests/conftest.py), and `sam` run the way a user runs it.

Where the engine cannot start (not root, no docker.io, dockerd refused), the tier fails under CI
(`CI` set, as .ci/run does) and `make sam-local`, and is skipped elsewhere, with the reason either
way (`pytest -ra` prints skip reasons).
The engine is stopped at the end of the session, even when tests fail, unless a user started it
with `make sam-local-up`; the teardown fails if any process, mount, cgroup, bridge or iptables rule
of it is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from testkit import REPO

sys.path.insert(0, str(REPO / "scripts"))  # scripts/ is not a package
from sam_engine.engine import Engine, EngineUnavailable
from sam_engine.image import ensure_image
from samkit import ENV_FILE, INVOKE_TIMEOUT_SECONDS, SAM, Invocation, cannot_run, sam_function_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The running engine with a current stand-in image."""
    engine = Engine.for_checkout()
    try:
        engine.start()
        reason = ""
    except EngineUnavailable as exc:
        reason = f"no Docker engine for the sam local tier: {exc}"
    if reason:
        cannot_run(reason)
    try:
        ensure_image(engine)
        yield engine
    finally:
        if not engine.keep_marker.exists():
            engine.stop()
            left = engine.leftovers()
            assert not left, f"the engine left these behind: {left}"


@pytest.fixture(scope="session")
def sam_env(engine: Engine) -> dict[str, str]:
    """The environment for `sam`: our engine, fake credentials (tests/conftest.py), no telemetry.

    sam asks STS for the account id before each invoke; with credentials set that call would go
    out to AWS, and botocore retries the failures with backoff (6-15 s an invoke). A closed local
    port and a single attempt make it fail at once, and keep every AWS call on the machine.
    """
    return os.environ | {
        "DOCKER_HOST": engine.docker_host,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }


@pytest.fixture(scope="session")
def template(build_dir: Path) -> Path:
    return build_dir / "template.yaml"


@pytest.fixture(scope="session")
def sam_invoke(sam_env: dict[str, str], template: Path) -> Callable[..., Invocation]:
    """sam_invoke(function, event_file, env_file=events/env.json): one `sam local invoke` (with
    env_file=None, without --env-vars)."""

    def run(function: str, event: Path, env_file: Path | None = ENV_FILE) -> Invocation:
        command = [str(SAM), "local", "invoke", sam_function_id(function), "--template", str(template)]
        command += ["--event", str(event), "--skip-pull-image"]
        command += ["--env-vars", str(env_file)] if env_file is not None else []
        result = subprocess.run(
            command, env=sam_env, capture_output=True, text=True, timeout=INVOKE_TIMEOUT_SECONDS, check=False
        )
        try:
            body = json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"`{' '.join(command)}` printed no JSON answer:\n{result.stdout}\n{result.stderr}")
        return Invocation(body, result.returncode, result.stderr)

    return run
