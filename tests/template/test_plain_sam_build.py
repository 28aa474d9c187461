"""Plain `sam build`, as serverless developers type it, in a fresh copy of the project: it needs the
python3.13 runtime's interpreter, which the root's .python-version names for pyenv and the layer's
Makefile finds the way `make venv` does, whatever Python is active."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO, copy_project

SAM = Path(sys.executable).parent / "sam"


def _without_python_313() -> dict[str, str]:
    """The environment minus any PATH entry holding python3.13 (`make test` puts pyenv's 3.13.0 first)."""
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "python3.13").exists()]
    env = {k: v for k, v in os.environ.items() if k != "PYENV_VERSION"}
    return env | {"PATH": os.pathsep.join(path)}


def _pyenv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = _without_python_313()
    return subprocess.run(["pyenv", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_python_version_names_the_runtime_the_makefiles_look_for() -> None:
    version = (REPO / ".python-version").read_text().strip()
    assert version == "3.13.0"
    runtime = re.search(r"Runtime: python(3\.\d+)", (REPO / "functions" / "template.yaml").read_text())
    assert runtime and version.startswith(runtime.group(1) + ".")
    for makefile in (REPO / "Makefile", REPO / "layers" / "shared" / "Makefile"):
        assert f"$(PYENV_ROOT)/versions/{version}/bin/python3.13" in makefile.read_text(), makefile


def test_the_layer_build_says_what_to_install_without_python_3_13(tmp_path: Path) -> None:
    if any((Path(d) / "python3.13").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a system python3.13 is installed: the layer build would find it")
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO / "layers" / "shared"), "build-SharedLayer"],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "no-pyenv")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert f"Python 3.13 not found (looked in {tmp_path}/no-pyenv/versions/3.13.0/bin" in done.stderr
    assert "install it with 'pyenv install 3.13.0'" in done.stderr
    assert not (tmp_path / "python").exists()


@pytest.mark.slow
def test_plain_sam_build_in_a_fresh_copy_whatever_python_is_active(tmp_path: Path) -> None:
    # Another version is active around the copy (a .python-version above it), and nothing but pyenv's
    # shims offers python3.13 on PATH: sam itself is called by its path, as `../.venv/bin/sam build`.
    if shutil.which("pyenv") is None:
        pytest.skip("pyenv is not installed: the case this test covers cannot arise")
    versions = _pyenv("versions", "--bare", cwd=tmp_path).stdout.split()
    others = [v for v in versions if re.fullmatch(r"3\.\d+\.\d+", v) and not v.startswith("3.13.")]
    if "3.13.0" not in versions or not others:
        pytest.skip(f"needs pyenv's 3.13.0 and another version, has {versions}")
    (tmp_path / ".python-version").write_text(f"{others[-1]}\n")
    app = copy_project(tmp_path / "app")
    assert _pyenv("version-name", cwd=tmp_path).stdout.strip() == others[-1]
    assert _pyenv("exec", "python3.13", "-V", cwd=tmp_path).returncode != 0  # what broke sam build
    shims = f"{_pyenv('root', cwd=tmp_path).stdout.strip()}/shims"
    env = _without_python_313()
    done = subprocess.run(
        [str(SAM), "build"],
        cwd=app,
        env=env | {"PATH": os.pathsep.join([shims, env["PATH"]])},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    layer = app / ".aws-sam" / "build" / "Functions" / "SharedLayer" / "python"
    assert (layer / "s3files_store" / "__init__.py").is_file()
