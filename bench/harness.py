"""Shared set-up for the benchmark: code locations, environment, the writer handler, the floor commit.

The floor is the least work an atomic, durable commit can do: create a staging file, write, fsync,
rename into place, fsync the destination directory. Every figure in the benchmark is a ratio against it
(or, for start-up, against a bare handler), measured side by side in the same run.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import statistics
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
BARE_HANDLER = (
    "import json\nimport os\nimport uuid\n\n\n"
    "def handler(event, context):\n"
    '    return {"statusCode": 200, "id": str(uuid.uuid4()), "n": len(json.dumps(event)), "pid": os.getpid()}'
    "\n"
)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_STAGING_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def local_invoke() -> ModuleType:
    """scripts/local_invoke: the project's Docker-free invoke through the RIE, which also knows the
    build layout (it parses each built template once per process, so the timed runs measure no
    template parse)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        module = importlib.import_module("local_invoke")
    finally:
        sys.path.pop(0)
    return module


# The functions of functions/template.yaml by name, with their logical ids (their build folders).
LOGICAL_IDS: dict[str, str] = local_invoke().LOGICAL_IDS
FUNCTIONS = tuple(LOGICAL_IDS)


@dataclass(frozen=True)
class Code:
    """Where the handlers and the layer's python/ directory are (the built tree, or the sources)."""

    functions: dict[str, Path]
    layer: Path
    origin: str
    built: bool

    @classmethod
    def locate(cls, build_dir: Path, use_source: bool) -> Code:
        app = local_invoke().functions_build_dir(build_dir)
        built = {name: app / LOGICAL_IDS[name] for name in FUNCTIONS}
        layer = app / "SharedLayer" / "python"
        if not use_source and layer.is_dir() and all((d / "app.py").is_file() for d in built.values()):
            return cls(built, layer, f"sam build output ({build_dir})", built=True)
        functions = {n: REPO / "functions" / n for n in FUNCTIONS}
        return cls(functions, REPO / "layers" / "shared", "source tree", built=False)


class FakeContext:
    """The attributes of a Lambda context that handlers and Powertools read."""

    function_name = "bench-writer"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-writer"
    log_group_name = "/aws/lambda/bench-writer"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def function_env(mount_root: Path) -> dict[str, str]:
    """The environment the functions get from the template, pointed at a local directory."""
    return {
        "MOUNT_ROOT": str(mount_root),
        "REQUIRE_MOUNT": "false",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "S3FilesLambdaBench",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def load_module(name: str, path: Path, layer: Path) -> ModuleType:
    """Import a handler file under a unique module name (all three handlers are called app.py)."""
    if str(layer) not in sys.path:
        sys.path.insert(0, str(layer))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}: check that the file exists and is a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def writer_event(doc_id: str, payload_len: int) -> dict[str, Any]:
    return {"id": doc_id, "payload": "x" * payload_len}


class Writer:
    """The writer handler and the layer's commit(), called in-process with documents of an exact size."""

    def __init__(self, writer_dir: Path, layer: Path, mount_root: Path) -> None:
        os.environ.update(function_env(mount_root))
        self.root = mount_root
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = load_module(
            "bench_writer_app", writer_dir / "app.py", layer
        ).handler
        # The layer's package is importable only once load_module has put the layer on sys.path.
        self.commit: Callable[[Path, str, bytes], Any] = importlib.import_module(
            "s3files_store.commit"
        ).commit

    def invoke(self, event: dict[str, Any], context: FakeContext) -> dict[str, Any]:
        response = self.handler(event, context)
        if response.get("statusCode") != 200:
            raise RuntimeError(f"writer refused the benchmark document: {response}")
        return response

    def calibrate(self, size: int, id_length: int) -> tuple[int, bytes, str]:
        """Find the payload length whose serialized document, with an id of `id_length` characters,
        is exactly `size` bytes.

        Returns (payload_len, the committed bytes, the key's directory relative to the root).
        """
        doc_id = "c" * id_length
        overhead = self.invoke(writer_event(doc_id, 0), FakeContext())["bytes"]
        payload_len = max(size - overhead, 0)
        response = self.invoke(writer_event(doc_id, payload_len), FakeContext())
        data = Path(response["committed_path"]).read_bytes()
        return payload_len, data, str(Path(response["key"]).parent)


def commit_jobs(
    writer: Writer, size: int, tag: str
) -> tuple[dict[str, Callable[[int], Callable[[], object]]], str]:
    """For each variant, a factory that prepares commit number i (outside any timer) and returns the
    call to time: the writer handler, the layer's commit(), the floor; all with the same bytes.

    Returns the factories and the directory (relative to the root) they all write into.
    """

    # Fixed-width ids, so that every writer document has exactly the calibrated length.
    def doc_id(i: int) -> str:
        return f"{tag}-w{i:012d}"

    payload_len, data, directory = writer.calibrate(size, len(doc_id(0)))
    root = writer.root

    def handler_job(i: int) -> Callable[[], object]:
        event, context = writer_event(doc_id(i), payload_len), FakeContext()
        return lambda: writer.invoke(event, context)

    def commit_job(i: int) -> Callable[[], object]:
        relative = f"{directory}/{tag}-c{i}.json"
        return lambda: writer.commit(root, relative, data)

    def floor_job(i: int) -> Callable[[], object]:
        relative = f"{directory}/{tag}-f{i}.json"
        return lambda: floor_commit(root, relative, data)

    return {"writer": handler_job, "commit": commit_job, "floor": floor_job}, directory


def floor_commit(root: Path, relative: str, data: bytes) -> None:
    """The minimal crash-safe commit: staging file, write, fsync, rename, fsync the directory."""
    staging = root / ".staging" / f"{uuid.uuid4().hex}.tmp"
    target = root / relative
    fd = os.open(staging, _STAGING_FLAGS, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(staging, target)  # noqa: PTH104 - the bare syscall, as the floor should be
    dir_fd = os.open(target.parent, _DIR_FLAGS)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def silenced_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null (Powertools logs and EMF metrics go there); forked workers inherit it."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def ratio(candidate: float, floor: float) -> float:
    return candidate / floor if floor else float("nan")
