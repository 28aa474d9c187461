"""Invoke a BUILT function locally without Docker, under AWS's Runtime Interface Emulator (RIE).

`make invoke FUNCTION=writer EVENT=events/writer.json` runs this after `sam build`. The functions are
those of functions/template.yaml (scripts/template_functions.py); without --function, the event
file's name says which (`events/reader-list.json` runs the reader), and an event file named for
another function than --function is refused.

The RIE binary ships inside the aws-sam-cli wheel; it runs `python -m awslambdaric app.handler` in
the built function directory with the built layer on PYTHONPATH (where /opt/python would be), and
the event is POSTed to it like `sam local invoke` would. The functions are the nested application
`Functions` of template.yaml, so sam build puts them, the layer and their built template under
build/Functions/.
The file system is a plain directory, MOUNT_ROOT=./.local/s3data with REQUIRE_MOUNT=false, so
nothing here needs AWS or Docker.

Environment: like `sam local invoke --env-vars events/env.json`, every variable the built template
declares for the function takes its value from env.json's function section, else its "Parameters"
section, else the template's literal value (variables env.json does not declare are ignored, as
SAM does). Then the local settings win: MOUNT_ROOT, REQUIRE_MOUNT, fake credentials and an
unreachable AWS endpoint, so no SDK call can leave the machine.

Sample files: before it runs a function, the command line (what `make invoke` runs) puts on the
mount root what that function's sample events expect there, as S3 Files' import of an upload would:
every file under events/mount/<function>/ (the unzip function's sample archive), at the same path,
unless the mount root already holds the same bytes there. `invoke()` itself puts nothing there.

With --endpoint-url (e.g. http://127.0.0.1:3001 of `sam local start-lambda`), the event goes to that
Lambda API instead, as the Invoke operation does it; no build or emulator is needed here, and the local
API checks no signature, so no credentials or Region either. The function's logs are in the output of
`sam local start-lambda`.

Output: on stderr, the function's logs only when the function raised or timed out (or with
--verbose), the committed path (writer), the emulator's real init and invoke durations, and the error
line; then the response alone on stdout, last. Every stderr line is written before the response, so
the order is the same on a terminal, through a pipe (`make invoke | cat`) or in a file, whatever the
buffering; `make invoke | jq` gets the response alone. Lambda refuses a synchronous request over
6,291,456 bytes before running anything: so does this script, with the same error, without starting
the emulator.

Exit status: 0 when the function returned a response without a statusCode >= 400; 1 when the
invocation failed (the function raised or timed out, the request was too large, or the function
answered statusCode >= 400: 400 invalid id or payload, 404 not found, 409 unsafe entry on the mount,
413 too large); 2 when the invoke could not be set up (no build, no RIE binary, bad event file, an
event file named for another function, or for none without --function). `make invoke` runs this
script as a recipe, and make turns any failure into its own exit status 2 after a line
`make: *** [Makefile:NN: invoke] Error 1` (or `Error 2`) naming this script's status. Hints name make's
variables (EVENT=, FUNCTION=) when the script runs under make (MAKELEVEL is set), its options otherwise.

Example:
    .venv/bin/python scripts/local_invoke.py --function writer --event events/writer.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from template_functions import function_of_event, functions

if TYPE_CHECKING:
    from typing import IO

REPO = Path(__file__).resolve().parent.parent
# Function name -> logical id, for every function of functions/template.yaml.
LOGICAL_IDS = {name: function.logical_id for name, function in functions().items()}
DEFAULT_FUNCTION = "writer"
LAYER_ID = "SharedLayer"
# Logical id of the AWS::Serverless::Application in template.yaml: its build folder.
FUNCTIONS_STACK = "Functions"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# What each function's sample events expect on the mount: events/mount/<function>/<key>.
SAMPLE_FILES = REPO / "events" / "mount"
# Lambda's limit for a synchronous invocation's request payload (and its response).
REQUEST_LIMIT_BYTES = 6_291_456
# The emulator's own timings: "INIT REPORT(durationMs: 137.7)", "INVOKE RTDONE(... duration: 8.7ms)".
_INIT_MS = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_INVOKE_MS = re.compile(r"INVOKE RTDONE\(.*duration: ([0-9.]+)ms\)")
# Emulator lines that mislead locally: its REPORT gives no real init time and always reports the
# whole memory size as used; the shutdown lines follow every invoke.
_NOISE = re.compile(
    r"^REPORT RequestId|\(rapid\) (Received signal|Shutting down|Reset initiated|Sending SIGKILL|"
    r"Waiting for runtime|The extension's directory)"
)
START_TIMEOUT_SECONDS = 10.0
# Through --endpoint-url: the longest Lambda Timeout (900 s) plus a container's start.
ENDPOINT_TIMEOUT_SECONDS = 960.0
STOP_GRACE_SECONDS = 3.0


class SetupError(Exception):
    """The invoke could not start; the message says what to do."""


def option(name: str, value: str) -> str:
    """How the user passes setting `name`: `EVENT=value` to `make invoke`, `--event value` to the script."""
    return f"{name.upper()}={value}" if os.environ.get("MAKELEVEL") else f"--{name} {value}"


@dataclass(frozen=True)
class InvokeResult:
    """What one invocation returned. `payload` is the parsed response (or raw text if not JSON)."""

    function: str
    payload: Any
    function_error: str | None
    logs: str
    duration_ms: float

    @property
    def timings(self) -> str:
        """The emulator's init and invoke durations, and the round trip seen from here."""
        init, run = _INIT_MS.search(self.logs), _INVOKE_MS.search(self.logs)
        parts = [
            f"init {float(init[1]):.0f} ms" if init else "",
            f"invoke {float(run[1]):.1f} ms" if run else "",
        ]
        return ", ".join([*filter(None, parts), f"round trip {self.duration_ms:.0f} ms"])

    @property
    def shown_logs(self) -> str:
        """The logs without the emulator's misleading and routine lines."""
        return "".join(line for line in self.logs.splitlines(keepends=True) if not _NOISE.search(line))

    @property
    def ok(self) -> bool:
        """True when the function returned normally with no statusCode >= 400."""
        if self.function_error:
            return False
        status = self.payload.get("statusCode") if isinstance(self.payload, dict) else None
        return not (isinstance(status, int) and status >= 400)


def find_rie() -> Path:
    """Return the RIE binary for this machine's architecture from the installed aws-sam-cli."""
    spec = importlib.util.find_spec("samcli")
    if spec is None or spec.origin is None:
        raise SetupError("aws-sam-cli is not importable: run the script with .venv/bin/python (make venv).")
    arch = "arm64" if platform.machine().lower() in {"aarch64", "arm64"} else "x86_64"
    rie = Path(spec.origin).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not os.access(rie, os.X_OK):
        raise SetupError(
            f"Runtime Interface Emulator not found or not executable at {rie}: reinstall aws-sam-cli."
        )
    return rie


def functions_build_dir(build_dir: Path) -> Path:
    """Where `sam build` into `build_dir` puts the functions, the layer and their built template."""
    return build_dir / FUNCTIONS_STACK


def function_settings(build_dir: Path, logical_id: str) -> tuple[str, int, int, dict[str, Any]]:
    """Read handler, timeout, memory and declared env vars of `logical_id` from the built template."""
    app_dir = functions_build_dir(build_dir)
    template_path = app_dir / "template.yaml"
    if not (app_dir / logical_id).is_dir() or not template_path.is_file():
        raise SetupError(f"{app_dir / logical_id} is missing: run `make build` (sam build) first.")
    template = _parse_template(template_path, template_path.stat().st_mtime_ns)
    defaults = template.get("Globals", {}).get("Function", {})
    props = {**defaults, **template["Resources"][logical_id].get("Properties", {})}
    variables = {
        **defaults.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }

    def number(key: str, default: int) -> int:
        return props[key] if isinstance(props.get(key), int) else default

    handler = props.get("Handler") if isinstance(props.get("Handler"), str) else "app.handler"
    return handler, number("Timeout", 3), number("MemorySize", 128), variables


@functools.cache
def _parse_template(path: Path, mtime_ns: int) -> dict[str, Any]:
    """The built template, parsed once per build (``mtime_ns`` changes when sam build rewrites it)."""
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(path.read_text())


def env_file_vars(env_file: Path | None, logical_id: str) -> dict[str, str]:
    """The "Parameters" section of a SAM --env-vars file, overlaid with the function's own section."""
    if env_file is None:
        return {}
    try:
        data = json.loads(env_file.read_text())
    except (OSError, ValueError) as exc:
        raise SetupError(
            f"cannot read env file {env_file}: {exc}. Pass a valid SAM --env-vars JSON."
        ) from exc
    return {k: str(v) for k, v in {**data.get("Parameters", {}), **data.get(logical_id, {})}.items()}


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all sockets stay bound until every port is chosen."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"the emulator exited with status {proc.returncode}; its log:\n{read_log(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.01)
    raise SetupError(
        f"the emulator did not listen on 127.0.0.1:{port} within {START_TIMEOUT_SECONDS:.0f}s "
        f"(is the machine overloaded?); its log:\n{read_log(log)}"
    )


def read_log(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the emulator (and with it the runtime), killing it if it ignores SIGTERM."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def invoke(
    function: str,
    event: Any,
    *,
    build_dir: Path = REPO / ".aws-sam" / "build",
    mount_root: Path = REPO / ".local" / "s3data",
    env_file: Path | None = REPO / "events" / "env.json",
) -> InvokeResult:
    """Run `function` (a key of LOGICAL_IDS) from `build_dir` once on `event`.

    Raises SetupError when the invoke cannot start; a function error is reported in the result.
    """
    logical_id = LOGICAL_IDS[function]
    body = json.dumps(event).encode()
    if len(body) > REQUEST_LIMIT_BYTES:
        message = (
            f"Request must be smaller than {REQUEST_LIMIT_BYTES} bytes for the InvokeFunction operation "
            f"(this event is {len(body):,} bytes): Lambda refuses it before running the function"
        )
        error = {"errorType": "RequestEntityTooLargeException", "errorMessage": message}
        return InvokeResult(function, error, "RequestEntityTooLargeException", "", 0.0)
    rie = find_rie()
    handler, timeout, memory, declared = function_settings(build_dir, logical_id)
    overrides = env_file_vars(env_file, logical_id)
    values = {name: overrides.get(name, value) for name, value in declared.items()}
    app_dir = functions_build_dir(build_dir)
    code_dir = (app_dir / logical_id).resolve()
    layer_dir = (app_dir / LAYER_ID / "python").resolve()
    mount_root = mount_root.resolve()
    try:
        mount_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(
            f"cannot use {mount_root} as the mount root ({exc}): free that path, or run "
            f"scripts/local_invoke.py with --mount-root DIR."
        ) from exc
    env = {
        **{name: str(value) for name, value in values.items() if isinstance(value, str | int | float)},
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        # Like Lambda's read-only /var/task and /opt: never write __pycache__ into the build.
        "PYTHONDONTWRITEBYTECODE": "1",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join([str(code_dir), str(layer_dir)]),
        "LAMBDA_TASK_ROOT": str(code_dir),
        "MOUNT_ROOT": str(mount_root),
        "REQUIRE_MOUNT": "false",
        "AWS_LAMBDA_FUNCTION_NAME": f"local-{logical_id}",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        # As in Lambda's python3.13 runtime: awslambdaric then encodes responses with non-ASCII as
        # UTF-8 (ensure_ascii=False), so response sizes are the ones Lambda's limit applies to.
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_ACCESS_KEY_ID": "local-invoke-fake",
        "AWS_SECRET_ACCESS_KEY": "local-invoke-fake",
        "AWS_SESSION_TOKEN": "local-invoke-fake",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Port 9 (discard) on loopback refuses connections: any stray SDK call fails fast, locally.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # The Runtime API port must be free too (default 9001), so that invokes can run side by side.
    port, runtime_api_port = free_ports(2)
    command = [str(rie), "--runtime-interface-emulator-address", f"127.0.0.1:{port}"]
    command += ["--runtime-api-address", f"127.0.0.1:{runtime_api_port}"]
    command += [sys.executable, "-m", "awslambdaric", handler]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=code_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc, log)
            started = time.monotonic()
            try:
                answer, error_header = post(f"http://127.0.0.1:{port}{INVOKE_PATH}", body, timeout + 10)
            except OSError as exc:
                raise SetupError(f"no answer from the emulator ({exc}); its log:\n{read_log(log)}") from exc
            duration_ms = (time.monotonic() - started) * 1000
        finally:
            stop(proc)
        logs = read_log(log)
    return result_of(function, answer, error_header, logs, duration_ms)


def invoke_endpoint(function: str, event: Any, endpoint_url: str) -> InvokeResult:
    """Run `function` once on `event` through the Lambda API at `endpoint_url` (`sam local start-lambda`).

    Raises SetupError when nothing answers there; a function error is reported in the result.
    """
    if not endpoint_url.startswith(("http://", "https://")):
        raise SetupError(f"--endpoint-url {endpoint_url} is not an http(s) URL: pass http://127.0.0.1:3001.")
    # The function's id as sam local names it: Functions/WriterFunction.
    function_id = f"{FUNCTIONS_STACK}/{LOGICAL_IDS[function]}"
    url = f"{endpoint_url.rstrip('/')}/2015-03-31/functions/{function_id}/invocations"
    started = time.monotonic()
    try:
        answer, error_header = post(url, json.dumps(event).encode(), ENDPOINT_TIMEOUT_SECONDS)
    except (OSError, ValueError) as exc:
        raise SetupError(
            f"no answer from {endpoint_url} ({exc}): start `sam local start-lambda` there first "
            f"(with --skip-pull-image on the project's engine), or pass the URL it prints."
        ) from exc
    return result_of(function, answer, error_header, "", (time.monotonic() - started) * 1000)


def post(url: str, body: bytes, timeout: float) -> tuple[bytes, str | None]:
    """POST one Invoke request; the answer's body and its function error (X-Amz-Function-Error, or
    the HTTP status of a refused request). OSError when nothing answers."""
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (callers pass http URLs)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.read(), response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as exc:
        return exc.read(), exc.headers.get("X-Amz-Function-Error") or f"HTTP {exc.code}"


def result_of(
    function: str, body: bytes, error_header: str | None, logs: str, duration_ms: float
) -> InvokeResult:
    try:
        payload = json.loads(body)
    except ValueError:
        # Handlers' results are always JSON; plain text comes from the emulator ("Task timed out").
        payload = body.decode(errors="replace")
        error_header = error_header or "Unhandled"
    if isinstance(payload, dict) and {"errorMessage", "errorType"} & payload.keys() and not error_header:
        error_header = "Unhandled"
    return InvokeResult(function, payload, error_header, logs, duration_ms)


def place_sample_files(function: str, mount_root: Path, samples: Path = SAMPLE_FILES) -> list[str]:
    """Put every file under ``samples/function`` at the same key under ``mount_root``, each
    atomically (a copy renamed into place, as S3 Files' import replaces a file), unless the same
    bytes are there already. Returns the keys placed."""
    placed = []
    source_dir = samples / function
    for source in sorted(source_dir.rglob("*")) if source_dir.is_dir() else []:
        key = source.relative_to(source_dir)
        target = mount_root / key
        if not source.is_file() or (target.is_file() and target.read_bytes() == source.read_bytes()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.sample")
        shutil.copyfile(source, partial)
        partial.replace(target)
        placed.append(key.as_posix())
    return placed


def choose_function(function: str | None, event: Path | None) -> str:
    """The function to run: `function` if given, else the one `event`'s file name is named for
    (`reader-list.json` -> reader), else the writer. SetupError when the event file is named for
    another function than `function`, or for none when `function` is not given."""
    named = function_of_event(event, LOGICAL_IDS) if event is not None else None
    if function is not None and named not in (None, function):
        raise SetupError(
            f"the event file {event} is named for the {named} function, not {function}: pass "
            f"{option('function', named)} (or no function), or an event of the {function} function."
        )
    if function is None and event is not None and named is None:
        raise SetupError(
            f"cannot tell the function from the event file name {event.name}: pass "
            f"{option('function', '<' + '|'.join(sorted(LOGICAL_IDS)) + '>')}, or name the file "
            f"<function>.json or <function>-<what>.json."
        )
    return function or named or DEFAULT_FUNCTION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--function", choices=sorted(LOGICAL_IDS), help="default: the one the event file is named for"
    )
    parser.add_argument("--event", type=Path, help="event JSON file (default: events/<function>.json)")
    parser.add_argument("--build-dir", type=Path, default=REPO / ".aws-sam" / "build")
    parser.add_argument("--mount-root", type=Path, default=REPO / ".local" / "s3data")
    parser.add_argument("--env-file", type=Path, default=REPO / "events" / "env.json")
    parser.add_argument("--verbose", action="store_true", help="print the function's logs on success too")
    parser.add_argument(
        "--endpoint-url",
        help="invoke through this Lambda API (sam local start-lambda: http://127.0.0.1:3001)",
    )
    args = parser.parse_args(argv)
    try:
        args.function = choose_function(args.function, args.event)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    event_path = args.event or REPO / "events" / f"{args.function}.json"
    try:
        event = json.loads(event_path.read_text())
    except (OSError, ValueError) as exc:
        print(
            f"error: cannot read event {event_path}: {exc}. Pass {option('event', '<a JSON file>')}.",
            file=sys.stderr,
        )
        return 2
    try:
        if args.endpoint_url:
            result = invoke_endpoint(args.function, event, args.endpoint_url)
        else:
            for key in place_sample_files(args.function, args.mount_root):
                print(
                    f"sample file placed on the mount (as S3 Files would import an upload): {key}",
                    file=sys.stderr,
                )
            result = invoke(
                args.function,
                event,
                build_dir=args.build_dir,
                mount_root=args.mount_root,
                env_file=args.env_file,
            )
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the emulator was stopped.", file=sys.stderr)
        return 130
    report(result, verbose=args.verbose)
    return 0 if result.ok else 1


def report(result: InvokeResult, *, verbose: bool) -> None:
    """The notes on stderr, then the response alone on stdout, last: stderr is written at once, so
    no buffering of stdout can put the response before a note."""
    notes = []
    if (verbose or result.function_error) and result.logs:
        notes.append(f"--- {result.function} logs ---\n{result.shown_logs}--- end of logs ---")
    if result.ok and isinstance(result.payload, dict) and "committed_path" in result.payload:
        notes.append(f"committed: {result.payload['committed_path']}")
    if result.logs:
        notes.append(f"timings: {result.timings} (cold start included)")
    if result.function_error:
        notes.append(f"error: the invocation failed ({result.function_error}); its answer follows.")
    elif not result.ok:
        notes.append(f"error: the function answered statusCode {result.payload['statusCode']}.")
    if notes:
        print("\n".join(notes), file=sys.stderr, flush=True)
    print(json.dumps(result.payload, indent=2) if isinstance(result.payload, dict) else result.payload)


if __name__ == "__main__":
    sys.exit(main())
