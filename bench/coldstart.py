"""Cold start: handler import time in fresh interpreters, and the first invocation through the RIE.

Import times are measured inside each fresh interpreter with perf_counter around the import
statement, so interpreter start-up (the same for everyone) is left out. Candidates run interleaved:
round i starts each of them once before round i + 1 starts any.

"As built" is exactly what `sam build` ships, the layer's .pyc included (layers/shared/Makefile;
Lambda cannot write bytecode into /var/task or /opt: what the package holds is all a cold start
gets); "without .pyc" is a copy with every __pycache__ left out, what a layer built by SAM's python
builder would ship.
"""

from __future__ import annotations

import os
import py_compile
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from harness import BARE_HANDLER, FUNCTIONS, LOGICAL_IDS, Code, function_env, local_invoke, p50, ratio

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


POWERTOOLS = "from aws_lambda_powertools import Logger, Metrics"
WITHOUT_PYC = "without .pyc"
# "import time: self | cumulative | <indent>name"; each nesting level adds two spaces.
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| (\s*)(\S+)")


def write_bare_handler(directory: Path, *, compiled: bool) -> Path:
    """The bare handler; `compiled`: with a .pyc as the layer build writes them (unchecked-hash)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(BARE_HANDLER)
    if compiled:
        py_compile.compile(
            str(directory / "app.py"),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    return directory


def _import_candidates(code: Code, bare: Path) -> dict[str, tuple[list[Path], str]]:
    candidates = {
        "bare": ([bare], "import app"),
        "powertools": ([code.layer], POWERTOOLS),
        "bare+powertools": ([bare, code.layer], f"import app\n{POWERTOOLS}"),
    }
    for name, directory in code.functions.items():
        candidates[name] = ([directory, code.layer], "import app")
    return candidates


def _python(paths: list[Path], statement: str, env: dict[str, str], *flags: str) -> str:
    """Run `statement` in a fresh isolated interpreter (-I -B: no bytecode written, as on Lambda's
    read-only /var/task and /opt) with `paths` first on sys.path.

    Returns stdout + stderr: the import time in seconds (last stdout line), -X importtime on stderr.
    """
    code = (
        f"import sys, time\nsys.path[:0] = {[str(p) for p in paths]!r}\n"
        f"t = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-B", *flags, "-c", code],
        env=env,
        cwd=paths[0],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"importing {paths[0]} failed; run it by hand to see why:\n{out.stderr[-2000:]}")
    return out.stdout + "\n" + out.stderr


def plain_copy(code: Code, bare: Path, work: Path) -> tuple[Code, Path]:
    """A copy of the functions, the layer (as SharedLayer/python) and the bare handler without any
    __pycache__ (where compileall puts the .pyc): what SAM's python builder, without the layer
    Makefile's compile step, would ship.
    """
    skip = shutil.ignore_patterns("__pycache__")
    functions = {name: work / f"{name}-function" for name in code.functions}
    for name, directory in code.functions.items():
        shutil.copytree(directory, functions[name], ignore=skip)
    layer = work / "SharedLayer" / "python"
    shutil.copytree(code.layer, layer, ignore=skip)
    shutil.copytree(bare, work / "bare", ignore=skip)
    return Code(functions, layer, f"{code.origin} {WITHOUT_PYC}", code.built), work / "bare"


def import_times(variants: dict[str, tuple[Code, Path]], mount_root: Path, runs: int) -> dict[str, Any]:
    """Median import seconds per candidate over `runs` fresh interpreters, for each variant
    (name -> code and bare handler): 'as built' and, when the build ships .pyc, 'without .pyc'.
    """
    env = {"PATH": os.environ["PATH"], **function_env(mount_root)}
    modes = {mode: _import_candidates(*variant) for mode, variant in variants.items()}
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(runs + 1):  # the first round warms the page cache: dropped
        for mode, candidates in modes.items():
            for name, (paths, statement) in candidates.items():
                stdout = _python(paths, statement, env).split("\n")
                samples[mode, name].append(float(next(line for line in reversed(stdout) if line)))
    results: dict[str, Any] = {mode: {} for mode in modes}
    for (mode, name), values in samples.items():
        results[mode][name] = {"p50": p50(values[1:])}
    for by_name in results.values():
        budget = by_name["bare+powertools"]["p50"]
        for name in FUNCTIONS:
            by_name[name]["ratio_vs_bare_plus_powertools"] = ratio(by_name[name]["p50"], budget)
    return results


def _importtime(paths: list[Path], statement: str, env: dict[str, str]) -> dict[str, Any]:
    """Module -> (self us, parent module or None) from one -X importtime run."""
    # With the collector off, a collection pause is not billed to whichever module happens to be
    # importing when it strikes (about 4 ms of the writer's import lands on one module otherwise).
    output = _python(paths, f"import gc\ngc.disable()\n{statement}", env, "-X", "importtime")
    rows = [(m[3], int(m[1]), len(m[2])) for m in map(_IMPORTTIME.match, output.splitlines()) if m]
    # Children are printed before their parent, indented two more spaces: walk backwards.
    modules: dict[str, Any] = {}
    stack: list[tuple[int, str]] = []
    for name, self_us, indent in reversed(rows):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        modules[name] = (self_us, stack[-1][1] if stack else None)
        stack.append((indent, name))
    return modules


def extra_imports(variant: tuple[Code, Path], mount_root: Path) -> dict[str, Any]:
    """What each handler imports beyond bare+powertools (collector off, min of 3 runs): the total,
    the biggest modules by own time, and the time grouped under the outermost extra module.
    """
    env = {"PATH": os.environ["PATH"], **function_env(mount_root)}
    candidates = _import_candidates(*variant)
    baseline = set(_importtime(*candidates["bare+powertools"], env)) - {"app"}
    report: dict[str, Any] = {}
    for name in variant[0].functions:
        runs = [_importtime(*candidates[name], env) for _ in range(3)]
        own = {m: min(r[m][0] for r in runs if m in r) for m in runs[0] if m not in baseline}
        grouped: dict[str, int] = defaultdict(int)
        for module, us in own.items():
            outer = module
            while (parent := runs[0][outer][1]) in own:
                outer = parent
            grouped[outer] += us
        report[name] = {
            "modules": len(own),
            "us": sum(own.values()),
            "by_own_time": dict(sorted(own.items(), key=lambda kv: -kv[1])[:6]),
            "grouped": dict(sorted(grouped.items(), key=lambda kv: -kv[1])),
        }
    return report


def _build_copy(build_dir: Path, dest: Path, parts: dict[str, Path]) -> Path:
    """A build directory at `dest`: `build_dir`'s functions template and a copy of each of `parts`
    (logical id -> directory), laid out as sam build does. Copies, so that nothing a run writes can
    reach the real build.
    """
    app = local_invoke().functions_build_dir(dest)
    app.mkdir(parents=True)
    shutil.copy2(local_invoke().functions_build_dir(build_dir) / "template.yaml", app / "template.yaml")
    for logical_id, source in parts.items():
        shutil.copytree(source, app / logical_id)
    return dest


def rie_invokers(
    build_dir: Path, bare: Path, plain: Code | None, mount_root: Path, work: Path
) -> dict[str, Callable[[], float]]:
    """Timed first invocations (process start to response) through local_invoke.invoke() of each
    function, of the bare handler (as the WriterFunction of a copy of the build: same template,
    layer and environment) and, given `plain`, of the writer without .pyc.

    local_invoke sets PYTHONDONTWRITEBYTECODE (Lambda cannot write into /var/task or /opt): every
    run sees exactly the bytecode its copy started with.
    """
    runner = local_invoke()
    app = runner.functions_build_dir(build_dir)
    layer = app / "SharedLayer"
    functions = {LOGICAL_IDS[name]: app / LOGICAL_IDS[name] for name in FUNCTIONS}
    as_built = _build_copy(build_dir, work / "rie-build", {**functions, "SharedLayer": layer})
    bare_build = _build_copy(build_dir, work / "rie-bare", {"WriterFunction": bare, "SharedLayer": layer})

    def timed(function: str, event: dict[str, Any], build: Path) -> Callable[[], float]:
        def run() -> float:
            for attempt in range(3):
                start = time.perf_counter()
                try:
                    result = runner.invoke(function, event, build_dir=build, mount_root=mount_root)
                except runner.SetupError as exc:
                    # Seen once in ~100 runs (the emulator exits with status 2 before listening):
                    # a failed start measures nothing, so start again.
                    print(f"[bench] RIE start failed ({exc}), attempt {attempt + 1} of 3", file=sys.stderr)
                    continue
                elapsed = time.perf_counter() - start
                if not result.ok:
                    raise RuntimeError(f"{function} failed under the RIE: {result.payload}\n{result.logs}")
                return elapsed
            raise RuntimeError(f"the RIE did not start 3 times for {function}: run scripts/local_invoke.py")

        return run

    invokers = {
        "bare": timed("writer", {"id": "rie-bare"}, bare_build),
        "writer": timed("writer", {"id": "rie", "payload": "x"}, as_built),
        "reader": timed("reader", {"prefix": "", "limit": 1}, as_built),
        "janitor": timed("janitor", {}, as_built),
    }
    if plain is not None:
        plain_build = _build_copy(
            build_dir,
            work / "rie-plain",
            {"WriterFunction": plain.functions["writer"], "SharedLayer": plain.layer.parent},
        )
        invokers[f"writer {WITHOUT_PYC}"] = timed("writer", {"id": "rie-plain", "payload": "x"}, plain_build)
    return invokers


def first_invokes(invokers: dict[str, Callable[[], float]], runs: int) -> dict[str, Any]:
    """Median first-invocation seconds per invoker, interleaved; ratios against 'bare'."""
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs + 1):  # the first round warms this process (imports, template parse): dropped
        for name, invoke in invokers.items():
            samples[name].append(invoke())
    results: dict[str, Any] = {name: {"p50": p50(v[1:]), "runs": v[1:]} for name, v in samples.items()}
    for name in invokers:
        results[name]["ratio_vs_bare"] = ratio(results[name]["p50"], results["bare"]["p50"])
    return results
