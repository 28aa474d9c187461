"""Helpers for the crash and concurrency tests: handlers by path, self-verifying payloads, workers.

Worker processes are forked from the test process after the handlers are imported, so a kill
costs milliseconds instead of an interpreter start; each worker runs the writer handler exactly as
Lambda would, with the environment it inherited.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

KIB, MIB = 1024, 1024 * 1024


def payload(doc_id: str, variant: int = 0, sizes: tuple[int, ...] = (KIB,)) -> dict[str, Any]:
    """The one document `(doc_id, variant)` may ever hold: size and bytes derive from the pair.

    Self-verifying: `sha256` is the digest of `padding`, so a reader can tell a complete payload
    without knowing who wrote it, and `payload(d["id"], d["variant"], sizes) == d` proves it exact.
    """
    seed = f"{doc_id}/{variant}"
    size = random.Random(seed).choice(sizes)
    block = hashlib.sha256(seed.encode()).hexdigest()
    padding = (block * (size // len(block) + 1))[:size]
    digest = hashlib.sha256(padding.encode()).hexdigest()
    return {"id": doc_id, "variant": variant, "size": size, "sha256": digest, "padding": padding}


def fork_worker(work: Callable[[], None]) -> int:
    """Run `work` in a forked child with its output silenced; the child exits 0, or 1 if it raised."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        logging.disable(logging.CRITICAL)
        sys.stdout = sys.stderr = Path(os.devnull).open("w")  # noqa: SIM115 - lives until os._exit
        work()
        status = 0
    finally:
        os._exit(status)


def documents(root: Path) -> dict[str, Path]:
    """Committed documents by id (every file outside .staging), refusing any unexpected file."""
    found: dict[str, Path] = {}
    for path in root.rglob("*"):
        if path.is_dir() or path.parent == root / ".staging":
            continue
        parts = path.relative_to(root).parts
        assert len(parts) == 5 and parts[0] == "documents" and path.suffix == ".json", path
        assert path.stem not in found, f"{path.stem} committed twice: {found[path.stem]}, {path}"
        found[path.stem] = path
    return found
