"""A local stand-in for `public.ecr.aws/lambda/python:3.13-x86_64`, the base image `sam local` runs
python3.13 functions on, for machines that reach no container registry.

What it holds, in the places the real image uses:
- a minimal Debian rootfs (`debootstrap --variant=minbase` from the machine's apt sources) with the
  shared libraries CPython's extension modules load: Debian's glibc, not Amazon Linux 2023's;
- the CPython 3.13 this project builds with (the venv's base interpreter) in `/var/lang`;
- `awslambdaric` and its dependencies, copied from the venv (the version requirements-dev.txt pins),
  in `/var/runtime`, started by `/var/runtime/bootstrap` as `python -m awslambdaric "$_HANDLER"`;
- the Runtime Interface Emulator from the aws-sam-cli wheel and `/lambda-entrypoint.sh`, so
  `docker run IMAGE app.handler` works as with the real image;
- the environment Lambda sets (AWS_EXECUTION_ENV makes awslambdaric encode responses the way the
  python3.13 runtime does), workdir `/var/task`.
No Lambda extensions, no Lambda init phase beyond what the RIE emulates.

Building takes about a minute (debootstrap dominates). The image carries a label with the hash of
its inputs; `ensure_image` rebuilds only when that hash changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker.errors
import samcli

from sam_engine.engine import SYSTEM_PATH, Engine, unmount_under

IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
CANDIDATE = "s3files-lambda/stand-in"
INPUTS_LABEL = "s3files-lambda.stand-in-inputs"
# CPython's extension modules need these (ldd on lib-dynload: _ssl, _sqlite3, _ctypes, readline,
# _curses, pyexpat, _lzma, _bz2, zlib, _uuid); awslambdaric's runtime_client needs libstdc++.
PACKAGES = ["ca-certificates", "libssl3", "libsqlite3-0", "libffi8", "libreadline8", "libncursesw6"]
PACKAGES += ["libtinfo6", "libexpat1", "liblzma5", "libbz2-1.0", "zlib1g", "libuuid1", "libstdc++6"]
RUNTIME_DISTRIBUTIONS = ("awslambdaric", "simplejson", "snapshot-restore-py")
# Parts of the interpreter's tree a Lambda function never uses (the test suite alone is 137 MB).
PYTHON_IGNORE = shutil.ignore_patterns(
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "site-packages",
    "*.opt-?.pyc",
    "config-3.*",
    "include",
    "share",
)
ENTRYPOINT = """#!/bin/sh
# As in the AWS base image: the RIE when run outside Lambda, the runtime alone inside it.
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
"""
BOOTSTRAP = """#!/bin/sh
# The Lambda python runtime's search path: layers (/opt/python), then the runtime client.
export PYTHONPATH=/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime
exec /var/lang/bin/python3.13 -m awslambdaric "$_HANDLER"
"""
ENVIRONMENT = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
}
# Imports that fail when a shared library is missing from the rootfs: checked in the built image.
SMOKE_TEST = "import ssl, sqlite3, ctypes, readline, curses, pyexpat, lzma, bz2, zlib, uuid, awslambdaric"


class ImageBuildError(Exception):
    """The stand-in could not be built; the message says which step and shows its output."""


def ensure_image(engine: Engine) -> bool:
    """Build the stand-in into the engine unless an image built from the same inputs is there.

    Returns True when it built one.
    """
    mirror, suite = apt_source()
    inputs = input_hash(mirror, suite)
    client = engine.client(timeout=600)
    with contextlib.suppress(docker.errors.ImageNotFound):
        if client.images.get(IMAGE).labels.get(INPUTS_LABEL) == inputs:
            return False
    work = engine.root / "build"
    _remove(work)
    rootfs = work / "rootfs"
    try:
        debootstrap = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        _step("debootstrap", [*debootstrap, f"--cache-dir={_cache_dir(engine)}", suite, str(rootfs), mirror])
        _install_runtime(rootfs)
        tarball = work / "rootfs.tar"
        _step("tar", ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."])
        changes = [f"ENV {name}={value}" for name, value in ENVIRONMENT.items()]
        changes += [
            "WORKDIR /var/task",
            'ENTRYPOINT ["/lambda-entrypoint.sh"]',
            f"LABEL {INPUTS_LABEL}={inputs}",
            'LABEL org.opencontainers.image.description="local stand-in for the AWS Lambda python3.13 '
            'base image, built by scripts/sam_engine: Debian minbase, not Amazon Linux"',
        ]
        # Tagged IMAGE only once the smoke test passed: a broken image must not look current.
        client.api.import_image_from_file(str(tarball), repository=CANDIDATE, tag=inputs, changes=changes)
        client.containers.run(
            f"{CANDIDATE}:{inputs}",
            ["-c", SMOKE_TEST],
            entrypoint="/var/lang/bin/python3.13",
            environment={"PYTHONPATH": "/var/runtime"},
            network_mode="none",
            remove=True,
        )
        client.images.get(f"{CANDIDATE}:{inputs}").tag(*IMAGE.rsplit(":", 1))
    except ImageBuildError:
        raise
    except (OSError, docker.errors.DockerException) as exc:
        raise ImageBuildError(f"building {IMAGE} failed: {exc}") from exc
    finally:
        _remove(work)
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(f"{CANDIDATE}:{inputs}")  # the tag, or the image if it failed
            client.images.prune(filters={"dangling": True})  # the stand-in this build replaced
    return True


def apt_source() -> tuple[str, str]:
    """(mirror URI, suite) of the first configured apt source for this Debian release."""
    codename = next(
        line.split("=", 1)[1].strip().strip('"')
        for line in Path("/etc/os-release").read_text().splitlines()
        if line.startswith("VERSION_CODENAME=")
    )
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        if path.suffix == ".sources":  # deb822: "URIs:" and "Suites:" in one stanza
            for stanza in path.read_text().split("\n\n"):
                fields = dict(
                    line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] not in "# "
                )
                uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
                if "deb" in fields.get("Types", "").split() and codename in suites and uris:
                    return uris[0], codename
        elif path.suffix == ".list" or path.name == "sources.list":  # one line: deb [opts] URI suite ...
            for line in path.read_text().splitlines() if path.is_file() else []:
                words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb" and words[2] == codename:
                    return words[1], codename
    raise ImageBuildError(f"no apt source for Debian {codename} in {apt}: debootstrap needs a mirror")


def input_hash(mirror: str, suite: str) -> str:
    """Everything the image is made of: this file, the sources, the interpreter, the runtime client."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(f"{mirror} {suite} {sys.version} {sys.base_prefix}".encode())
    for name in RUNTIME_DISTRIBUTIONS:
        digest.update(f"{name}=={importlib.metadata.version(name)}".encode())
    digest.update(_rie().read_bytes())
    return digest.hexdigest()[:16]


def _install_runtime(rootfs: Path) -> None:
    shutil.copytree(sys.base_prefix, rootfs / "var" / "lang", symlinks=True, ignore=PYTHON_IGNORE)
    runtime = rootfs / "var" / "runtime"
    for name in RUNTIME_DISTRIBUTIONS:
        for file in importlib.metadata.distribution(name).files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts outside site-packages; bytecode is rebuilt as needed
            target = runtime / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file.locate(), target)
    rie = rootfs / "usr" / "local" / "bin" / "aws-lambda-rie"
    shutil.copy2(_rie(), rie)
    for path, text in ((rootfs / "lambda-entrypoint.sh", ENTRYPOINT), (runtime / "bootstrap", BOOTSTRAP)):
        path.write_text(text)
    for path in (rie, rootfs / "lambda-entrypoint.sh", runtime / "bootstrap"):
        path.chmod(0o755)
    for directory in ("var/task", "opt"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    # What debootstrap leaves that an image never needs.
    for directory in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        shutil.rmtree(rootfs / directory, ignore_errors=True)


def _remove(work: Path) -> None:
    """Delete the build tree, after unmounting what debootstrap mounted in it (/proc, /sys, maybe /dev)."""
    left = unmount_under(work)
    if left:
        raise ImageBuildError(f"cannot unmount {left}: unmount them, then delete {work}")
    shutil.rmtree(work, ignore_errors=True)


def _rie() -> Path:
    return Path(samcli.__file__).parent / "local" / "rapid" / "aws-lambda-rie-x86_64"


def _cache_dir(engine: Engine) -> Path:
    """debootstrap's downloaded packages, kept so a rebuild fetches nothing new."""
    cache = engine.root / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _step(name: str, command: list[str]) -> None:
    path = os.pathsep.join([os.environ.get("PATH", ""), SYSTEM_PATH])  # debootstrap is in /usr/sbin
    env = os.environ | {"PATH": path, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise ImageBuildError(f"{name} failed with status {result.returncode}:\n{output}")
