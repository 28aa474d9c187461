"""Suite-wide guards (no test may reach real AWS) and the handler fixtures the test folders share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from testkit import REPO, FakeContext, load_handler

from s3files_store import mount, tree
from s3files_store.config import get_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

# Set at import time, before any test module creates a boto3 client or imports a handler: fake
# credentials and a region, and no shared config files, so nothing can pick up a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAM_CLI_TELEMETRY": "0",
    "POWERTOOLS_METRICS_NAMESPACE": "S3FilesLambdaTest",
    "POWERTOOLS_SERVICE_NAME": "s3files-test",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `sam build` per session (template, SAR and e2e tests share it), of a clean copy of the
    application: the repository's .aws-sam/, caches and samconfig.toml play no part. The functions
    template (functions/template.yaml, nested as `Functions`) is built into build/Functions/.
    """
    app = tmp_path_factory.mktemp("app")
    # The functions template's SAR metadata names ../LICENSE and ../README.md (sam package uploads them).
    for name in ("template.yaml", "LICENSE", "README.md"):
        shutil.copy2(REPO / name, app / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for directory in ("functions", "layers", "infra"):
        shutil.copytree(REPO / directory, app / directory, ignore=ignore)
    # sam build needs the runtime's exact Python (python3.13) on PATH.
    candidates = [Path(sys.executable).parent, Path(sys.base_prefix) / "bin"]
    python313 = [str(d) for d in candidates if (d / "python3.13").exists()]
    if not python313:
        pytest.fail(f"python3.13 not found in {candidates}: install it with `pyenv install 3.13.0`")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--parallel", "--build-dir", str(app / "build")],
        cwd=app,
        env=os.environ | {"PATH": os.pathsep.join([*python313, os.environ["PATH"]])},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return app / "build"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a real tmpfs (needs root/CAP_SYS_ADMIN, else the test is skipped); unmounted after."""
    mounted: list[Path] = []

    def _mount(size: str = "1m", name: str = "mnt") -> Path:
        target = tmp_path / name
        target.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount tmpfs (needs root / CAP_SYS_ADMIN): {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield _mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(params=["directory", "tmpfs"])
def ground(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A place to plant hostile trees: a plain directory, or a real tmpfs (another file system)."""
    if request.param == "tmpfs":
        return request.getfixturevalue("tmpfs")("64m", "ground")
    directory = tmp_path / "ground"
    directory.mkdir()
    return directory


@pytest.fixture(autouse=True)
def _no_kept_descriptors() -> Iterator[None]:
    """Commits keep directory descriptors per thread; no test inherits another's."""
    tree.forget_kept()
    yield
    tree.forget_kept()


@pytest.fixture(scope="session")
def writer() -> ModuleType:
    return load_handler("writer")


@pytest.fixture(scope="session")
def reader() -> ModuleType:
    return load_handler("reader")


@pytest.fixture(scope="session")
def janitor() -> ModuleType:
    return load_handler("janitor")


@pytest.fixture(scope="session")
def unzip() -> ModuleType:
    return load_handler("unzip")


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def mount_root_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Path]]:
    """Point the handlers at a directory as their mount root, the way Lambda does: through the
    environment, read at invoke time (the config and mount-check caches are cleared around it)."""

    def point(directory: Path) -> Path:
        monkeypatch.setenv("MOUNT_ROOT", str(directory))
        monkeypatch.setenv("REQUIRE_MOUNT", "false")
        get_config.cache_clear()
        mount.invalidate()
        return directory

    yield point
    get_config.cache_clear()
    mount.invalidate()


@pytest.fixture
def root(tmp_path: Path, mount_root_at: Callable[[Path], Path]) -> Path:
    """The mount root: a subdirectory of tmp_path, so tests can prove nothing was written beside it."""
    directory = tmp_path / "s3data"
    directory.mkdir()
    return mount_root_at(directory)
