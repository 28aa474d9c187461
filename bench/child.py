"""Run N commits of one kind between two marker syscalls, for bench/syscalls.py to trace with strace.

Usage: python bench/child.py writer|commit|floor N SIZE MOUNT_ROOT WRITER_DIR LAYER_DIR

Set-up (import, first commit, directory creation) happens before the start marker, so the trace
between the markers is the steady state of a warm execution environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import Writer, commit_jobs, silenced_stdout

START_MARKER = "/nonexistent/bench-start-marker"
END_MARKER = "/nonexistent/bench-end-marker"


def _marker(path: str) -> None:
    try:
        Path(path).stat()
    except FileNotFoundError:
        return


def main(mode: str, n: int, size: int, root: Path, writer_dir: Path, layer: Path) -> None:
    writer = Writer(writer_dir, layer, root)
    with silenced_stdout():
        make = commit_jobs(writer, size, "trace")[0][mode]
        make(-1)()
        jobs = [make(i) for i in range(n)]
        _marker(START_MARKER)
        for job in jobs:
            job()
        _marker(END_MARKER)


if __name__ == "__main__":
    mode, n, size, root, writer_dir, layer = sys.argv[1:]
    main(mode, int(n), int(size), Path(root), Path(writer_dir), Path(layer))
