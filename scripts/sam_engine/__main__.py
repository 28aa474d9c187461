"""Start or stop the private Docker engine for `sam local`.

    PYTHONPATH=scripts .venv/bin/python -m sam_engine up     # engine + stand-in image, prints DOCKER_HOST
    PYTHONPATH=scripts .venv/bin/python -m sam_engine down   # stops it; exits 1 if anything is left

`up` is idempotent (a running engine and a current image are reused) and marks the engine as the
user's, so the test tier leaves it running; `down` stops it whoever started it.
"""

from __future__ import annotations

import argparse
import sys
import time

from sam_engine.engine import REPO, Engine, EngineUnavailable
from sam_engine.image import IMAGE, ImageBuildError, ensure_image


def up(engine: Engine) -> int:
    started = time.monotonic()
    started_here = False
    try:
        started_here = engine.start()
        engine.keep_marker.touch()
        built = ensure_image(engine)
    except (EngineUnavailable, ImageBuildError) as exc:
        if started_here:
            engine.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"engine ready in {time.monotonic() - started:.0f}s ({'built' if built else 'reused'} {IMAGE})")
    print(f"export DOCKER_HOST={engine.docker_host}")
    print("then, after `make build`:")
    print("  .venv/bin/sam local invoke Functions/WriterFunction --event events/writer.json \\")
    print("    --env-vars events/env.json --skip-pull-image")
    print("and `make sam-local-down` when done.")
    return 0


def down(engine: Engine) -> int:
    engine.stop()
    left = engine.leftovers()
    for item in left:
        print(f"left behind: {item}", file=sys.stderr)
    return 1 if left else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam_engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    engine = Engine.for_checkout(REPO)
    return up(engine) if args.command == "up" else down(engine)


if __name__ == "__main__":
    sys.exit(main())
