"""What a killed run of the engine leaves (a process, a mount, the bridge) is found and removed by
`Engine.stop()`, which the next start and `make sam-local-down` run. Real ones, without dockerd: the
tier's own teardown proves the same on the real engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from sam_engine.engine import Engine
from samkit import cannot_run

if TYPE_CHECKING:
    from pathlib import Path


def test_stop_removes_what_a_killed_engine_left(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        cannot_run("mounts and network links need root and iproute2")
    engine = Engine(tmp_path / "docker")
    merged = engine.data_root / "overlay2" / "0123" / "merged"
    merged.mkdir(parents=True)
    engine.exec_root.mkdir()
    # A process that looks like the engine's containerd: its name, our state directory in its arguments.
    orphan = subprocess.Popen(
        ["containerd", "-c", "import time; time.sleep(120)", str(engine.exec_root / "containerd.toml")],
        executable=sys.executable,
    )
    try:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(merged)], check=True)
        subprocess.run(["ip", "link", "add", engine.bridge, "type", "bridge"], check=True)
        left = engine.leftovers()
        assert any(item.startswith(f"process {orphan.pid}:") for item in left), left
        assert f"mount {merged}" in left
        assert f"network link {engine.bridge}" in left

        engine.stop()

        assert engine.leftovers() == []
        assert orphan.poll() is not None
        assert not engine.exec_root.exists()
    finally:
        orphan.kill()
        orphan.wait()
        subprocess.run(["umount", "--lazy", str(merged)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", engine.bridge], capture_output=True, check=False)
