"""A private Docker engine for `sam local`, started and stopped by this project alone.

It is Debian's `dockerd` (package docker.io) with its own config file, data-root, exec-root,
pidfile and unix socket under `.local/docker/`, so it never meets a Docker engine the user runs
elsewhere. No iptables rule, NAT or IP forwarding: SAM only needs the host to reach each function
container on the bridge, which docker-proxy does for the port SAM publishes on 127.0.0.1. The bridge
is our own (named and addressed per checkout, created here and removed on stop) because SAM always
puts its containers on the engine's default bridge.

Example:
    >>> engine = Engine.for_checkout(REPO)
    >>> engine.start()       # True if it started one, False if ours was already running
    >>> engine.docker_host   # export as DOCKER_HOST for sam
    >>> engine.stop()        # every process by PID, the mounts, the bridge
    >>> engine.leftovers()   # [] once stopped
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20
# Candidate subnets for the bridge: one /24 of 172.29.0.0/16, chosen per checkout.
SUBNETS = list(ipaddress.ip_network("172.29.0.0/16").subnets(new_prefix=24))
ENGINE_PROGRAMS = {"dockerd", "containerd", "containerd-shim-runc-v2", "docker-proxy"}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EngineUnavailable(Exception):
    """This machine cannot run the engine (no root, no dockerd, dockerd refused to start)."""


@dataclass(frozen=True)
class Engine:
    """Paths and names of the engine that belongs to one checkout (``root`` is its `.local/docker`)."""

    root: Path

    @classmethod
    def for_checkout(cls, repo: Path = REPO) -> Engine:
        return cls(repo.resolve() / ".local" / "docker")

    @property
    def tag(self) -> str:
        """Short id of this checkout: two checkouts get distinct bridges and cgroups."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    @property
    def bridge(self) -> str:
        return f"s3fl-{self.tag}"  # at most 15 characters (IFNAMSIZ)

    @property
    def cgroup_parent(self) -> str:
        return f"s3fl-{self.tag}"

    @property
    def data_root(self) -> Path:
        """Images (the stand-in and the images SAM builds on it) live here between runs."""
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        """Runtime state: sockets, pidfiles, containerd's state. Removed on stop."""
        return self.root / "run"

    @property
    def socket(self) -> Path:
        return self.exec_root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.exec_root / "docker.pid"

    @property
    def config_file(self) -> Path:
        return self.root / "daemon.json"

    @property
    def log_file(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def keep_marker(self) -> Path:
        """Present when a user started the engine (`make sam-local-up`): test sessions leave it running."""
        return self.exec_root / "keep"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=timeout)

    def running(self) -> bool:
        """True when our dockerd is alive and answers on our socket."""
        if not _our_dockerd(self):
            return False
        try:
            with contextlib.closing(self.client(timeout=5)) as client:
                return bool(client.ping())
        except (docker.errors.DockerException, requests.RequestException):
            return False

    def start(self) -> bool:
        """Start the engine unless ours already runs. Returns True when this call started it.

        Raises EngineUnavailable (with what to do) when this machine cannot run it.
        """
        if self.running():
            return False
        _check_prerequisites(self)
        self.stop()  # what a killed earlier run may have left: processes, mounts, the bridge
        subnet = _free_subnet(self)
        gateway = next(subnet.hosts())
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for directory in (self.data_root, self.exec_root):
            directory.mkdir(parents=True, exist_ok=True)
        config = {
            "data-root": str(self.data_root),
            "exec-root": str(self.exec_root),
            "pidfile": str(self.pidfile),
            "hosts": [self.docker_host],
            "bridge": self.bridge,
            "iptables": False,
            "ip-masq": False,
            "ip-forward": False,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": self.cgroup_parent,
            "log-level": "warn",
        }
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")
        with self.log_file.open("wb") as log:
            # A session of its own: the engine outlives `make sam-local-up`, and a Ctrl-C in the
            # terminal that started it does not reach it.
            proc = subprocess.Popen(
                ["dockerd", "--config-file", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/root")},
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.running():
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not answer"
                log_tail = self.log_file.read_text(errors="replace")[-3000:]
                self.stop()
                raise EngineUnavailable(
                    f"dockerd {why} within {START_TIMEOUT_SECONDS}s on {self.socket}; its log "
                    f"({self.log_file}) ends with:\n{log_tail}"
                )
            time.sleep(0.2)
        return True

    def stop(self) -> None:
        """Stop every process of this engine by PID, unmount what it mounted, delete its bridge.

        Safe to call when nothing runs. dockerd first gets SIGTERM (it stops its containers and its
        containerd); whatever is still alive after STOP_TIMEOUT_SECONDS gets SIGKILL.
        """
        if sys.platform != "linux":
            return  # the engine only ever runs on Linux: nothing to stop (`make clean` elsewhere)
        dockerd = _our_dockerd(self)
        if dockerd:
            os.kill(dockerd, signal.SIGTERM)
            _wait_gone([dockerd], STOP_TIMEOUT_SECONDS)
        pids = _our_processes(self)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(pids, STOP_TIMEOUT_SECONDS)
        unmount_under(self.root)
        for cgroup in sorted(_our_cgroups(self), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        if _link_exists(self.bridge):
            _run("ip", "link", "del", self.bridge)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What of this engine is still on the machine: processes, mounts, cgroups, bridge, iptables rules."""
        if sys.platform != "linux":
            return []
        found = [f"process {pid}: {' '.join(_cmdline(pid))}" for pid in _our_processes(self)]
        found += [f"mount {point}" for point in mounts_under(self.root)]
        found += [f"cgroup {path}" for path in _our_cgroups(self)]
        if _link_exists(self.bridge):
            found.append(f"network link {self.bridge}")
        if shutil.which("iptables-save"):
            rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
            found += [f"iptables rule {line}" for line in rules.splitlines() if self.bridge in line]
        return found


def _check_prerequisites(engine: Engine) -> None:
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root (cgroups, mounts, the bridge); run as root")
    # debootstrap is not the engine's, but without it the base image cannot be built (image.py).
    tools = ("dockerd", "containerd", "runc", "docker-proxy", "ip", "debootstrap")
    missing = [tool for tool in tools if not _which(tool)]
    if missing:
        raise EngineUnavailable(
            f"{', '.join(missing)} not found: install Debian's packages with "
            f"`apt-get install docker.io debootstrap iproute2` (.ci/run does)"
        )
    # The kernel limits unix socket paths to 108 bytes; containerd's sockets sit deeper than ours.
    if len(str(engine.exec_root / "containerd" / "containerd.sock.ttrpc")) > 100:
        raise EngineUnavailable(
            f"the checkout path is too long for dockerd's sockets under {engine.exec_root}"
        )


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), SYSTEM_PATH]))


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineUnavailable(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


def _free_subnet(engine: Engine) -> ipaddress.IPv4Network:
    """A /24 no address or route on this machine overlaps (e.g. another checkout's bridge)."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=True)
    used = [ipaddress.ip_interface(line.split()[3]).network for line in shown.stdout.splitlines()]
    used += [
        ipaddress.ip_network(line.split()[0], strict=False)
        for line in routes.stdout.splitlines()
        if line and line.split()[0][0].isdigit()
    ]
    start = int(engine.tag, 16) % len(SUBNETS)
    for subnet in SUBNETS[start:] + SUBNETS[:start]:
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise EngineUnavailable("no free /24 in 172.29.0.0/16 for the engine's bridge")


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """True unless the process is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (dockerd started here)
        if not any(_alive(pid) for pid in pids):
            return
        time.sleep(0.1)


def _our_dockerd(engine: Engine) -> int | None:
    """PID of the dockerd running with our config file, if any (the pidfile alone could be stale)."""
    for pid in _our_processes(engine):
        argv = _cmdline(pid)
        if argv and Path(argv[0]).name == "dockerd":
            return pid
    return None


def _our_processes(engine: Engine) -> list[int]:
    """dockerd and containerd (our paths in their arguments), the containerd shims (our containerd
    socket), docker-proxy (a container address on our bridge) and every process in our containers
    (our cgroup parent)."""
    network = _bridge_network(engine.bridge)
    marks = (str(engine.config_file), str(engine.exec_root))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _alive(int(entry.name)):
            continue
        argv = _cmdline(int(entry.name))
        name = Path(argv[0]).name if argv else ""
        ours = name in ENGINE_PROGRAMS and any(mark in arg for arg in argv for mark in marks)
        if name == "docker-proxy" and network and "-container-ip" in argv:
            ours = ipaddress.ip_address(argv[argv.index("-container-ip") + 1]) in network
        if not ours:
            with contextlib.suppress(OSError):
                ours = f"/{engine.cgroup_parent}/" in (entry / "cgroup").read_text()
        if ours:
            found.append(int(entry.name))
    return found


def _bridge_network(bridge: str) -> ipaddress.IPv4Network | None:
    if not _link_exists(bridge):
        return None
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True)
    lines = shown.stdout.split()
    return ipaddress.ip_interface(lines[3]).network if len(lines) > 3 else None


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory``, deepest first (overlays, shm, network namespaces)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with space, tab, newline and backslash escaped as \\ooo.
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == str(directory) or point.startswith(f"{directory}/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_under(directory: Path) -> list[str]:
    """Unmount everything at or below ``directory``; returns what could not be unmounted.

    Call it before deleting a tree something may have mounted into (a bind mount of /dev would
    otherwise be deleted through).
    """
    for point in mounts_under(directory):
        subprocess.run(["umount", point], capture_output=True, check=False)
        if point in mounts_under(directory):
            # Lazily if busy: the mount goes away as soon as its last user has.
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return mounts_under(directory)


def _our_cgroups(engine: Engine) -> list[Path]:
    """The cgroup directories dockerd created for our containers, in every hierarchy."""
    base = Path("/sys/fs/cgroup")
    candidates = [base / engine.cgroup_parent, *base.glob(f"*/{engine.cgroup_parent}")]
    found = []
    for top in candidates:
        if top.is_dir():
            found += [top, *(p for p in top.rglob("*") if p.is_dir())]
    return found
