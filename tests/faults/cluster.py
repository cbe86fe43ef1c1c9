"""A RabbitMQ cluster of its own on this machine, for fault tests (never the shared broker).

Each node is a `rabbitmq-server` with its own node name (`rabbit-t1@localhost` …), AMQP and
distribution ports, data, log and config files in a temporary directory, and the cluster's
own Erlang cookie (a temporary HOME). The nodes register with an `epmd` of their own on a
port of its own, so neither the machine's broker (`rabbit@localhost`) nor its epmd is ever
involved. Nodes 2 and 3 join node 1 with `rabbitmqctl stop_app / join_cluster / start_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, reap, tcp_reachable

_BOOT_S = 90.0  # a node boots in ~5 s alone; three at once on two busy cores take longer
_CTL_S = 120.0


class ClusterUnavailable(RuntimeError):
    """The cluster could not be formed (the message says why)."""


def rabbitmq_binaries() -> tuple[Path, Path, Path] | None:
    """(`rabbitmq-server`, `rabbitmqctl`, `epmd`), or None where RabbitMQ is not installed.

    Debian's `/usr/sbin/rabbitmq-server` is a wrapper that switches to the `rabbitmq` user
    (and its HOME, so its cookie); the scripts it wraps take our environment as it is.
    """
    server, epmd = shutil.which("rabbitmq-server"), shutil.which("epmd")
    if server is None or epmd is None:
        return None
    real = Path(server).resolve()
    bindir = real.parent
    if real.name == "rabbitmq-script-wrapper":
        real = bindir / "rabbitmq-server"
    ctl = bindir / "rabbitmqctl"
    if not (real.exists() and ctl.exists()):
        return None
    return real, ctl, Path(epmd)


def _free_port_below(limit: int) -> int:
    """A free port under `limit` (the CLI's own distribution ports sit 10000 above a node's)."""
    for _ in range(200):
        port = random.randrange(20000, limit)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise ClusterUnavailable(f"no free port below {limit}")


@dataclass
class Node:
    """One `rabbitmq-server` of the cluster."""

    index: int
    name: str
    amqp_port: int
    dist_port: int
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its AMQP URL."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def log_path(self) -> Path:
        """Where its console output goes."""
        return self.base / "console.log"

    @property
    def pid_file(self) -> Path:
        """Where the Erlang VM writes its OS pid."""
        return self.base / "beam.pid"

    def beam_pid(self) -> int | None:
        """The Erlang VM's pid (the server script's child), once it has written it."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        """Its server script still runs."""
        return self.proc is not None and self.proc.poll() is None


class RabbitCluster:
    """Three (or `size`) RabbitMQ nodes joined into one cluster, in `root`."""

    def __init__(self, root: Path, *, size: int = 3) -> None:
        found = rabbitmq_binaries()
        if found is None:
            raise ClusterUnavailable("rabbitmq-server (or epmd) is not installed")
        self._server, self._ctl, self._epmd_bin = found
        self.root = root
        self.home = root / "home"
        self.epmd_port = _free_port_below(40000)
        self._epmd: subprocess.Popen[bytes] | None = None
        token = secrets.token_hex(2)
        self.nodes = [
            Node(
                index=i,
                name=f"rabbit-t{i + 1}-{token}@localhost",
                amqp_port=free_port(),
                dist_port=_free_port_below(40000),
                base=root / f"n{i + 1}",
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        """Every node's AMQP URL, node 1 first."""
        return [node.url for node in self.nodes]

    def _env(self, node: Node | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.home),  # its .erlang.cookie is this cluster's own
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # Not /etc/rabbitmq/rabbitmq-env.conf, which names the machine's own node.
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
        }
        if node is not None:
            base = node.base
            env.update(
                RABBITMQ_NODENAME=node.name,
                RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                RABBITMQ_NODE_PORT=str(node.amqp_port),
                RABBITMQ_DIST_PORT=str(node.dist_port),
                RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
                RABBITMQ_LOG_BASE=str(base / "log"),
                RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
                RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
                RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
                RABBITMQ_PID_FILE=str(node.pid_file),
                # One scheduler, no busy-waiting: three nodes share two cores with everything.
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                    "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none "
                    "-kernel inet_dist_use_interface {127,0,0,1}"
                ),
            )
        return env

    def _write_files(self) -> None:
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("")
        for node in self.nodes:
            node.base.mkdir(parents=True)
            (node.base / "enabled_plugins").write_text("[].\n")
            (node.base / "rabbitmq.conf").write_text(
                "log.console = false\n"
                "log.file.level = info\n"
                "disk_free_limit.absolute = 50MB\n"
                "collect_statistics_interval = 30000\n"
            )

    async def ctl(self, node: Node, *args: str, timeout_s: float = _CTL_S) -> str:
        """`rabbitmqctl -n <node> …`; its output, or ClusterUnavailable when it fails."""
        env = self._env()
        env["RABBITMQ_DIST_PORT"] = str(node.dist_port)  # its own ports come 10000 above
        proc = await asyncio.create_subprocess_exec(
            str(self._ctl),
            "-n",
            node.name,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ClusterUnavailable(f"rabbitmqctl {' '.join(args)} timed out") from None
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise ClusterUnavailable(
                f"rabbitmqctl -n {node.name} {' '.join(args)} exited {proc.returncode}: "
                f"{text[-800:]}"
            )
        return text

    def _start_epmd(self) -> None:
        self._epmd = subprocess.Popen(
            [str(self._epmd_bin), "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _spawn(self, node: Node) -> None:
        with contextlib.suppress(FileNotFoundError):
            node.pid_file.unlink()
        log = node.log_path.open("ab")
        node.proc = subprocess.Popen(
            [str(self._server)],
            env=self._env(node),
            cwd=node.base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def _wait_booted(self, node: Node) -> None:
        deadline = time.monotonic() + _BOOT_S
        while not tcp_reachable("127.0.0.1", node.amqp_port, timeout_s=0.2):
            if not node.running:
                raise ClusterUnavailable(f"{node.name} exited while booting:\n{self.tail(node)}")
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{node.name} did not boot in {_BOOT_S:g}s")
            await asyncio.sleep(0.2)
        await self.ctl(node, "await_startup", "--timeout", str(int(_BOOT_S)))

    async def start(self) -> None:
        """Boot every node, join them into one cluster, check that it has them all."""
        self._write_files()
        self._start_epmd()
        for node in self.nodes:
            self._spawn(node)
        await asyncio.gather(*(self._wait_booted(node) for node in self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:  # one at a time: joins change the cluster's schema
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", first.name)
            await self.ctl(node, "start_app")
        running = await self.running_nodes(first)
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise ClusterUnavailable(f"the cluster runs {running}, not all three nodes")

    async def running_nodes(self, via: Node) -> list[str]:
        """The nodes `via` sees running in its cluster."""
        text = await self.ctl(via, "eval", "rabbit_nodes:all_running().")
        return [name.strip(" '[]\n") for name in text.strip().strip("[]").split(",") if name]

    async def kill(self, node: Node) -> None:
        """`kill -9` of the node's Erlang VM: the node is gone at once, as in a crash."""
        pid = node.beam_pid()
        if pid is None:
            raise ClusterUnavailable(f"{node.name} wrote no pid file")
        os.kill(pid, signal.SIGKILL)
        assert node.proc is not None
        try:
            await asyncio.to_thread(node.proc.wait, 15)
        except subprocess.TimeoutExpired:
            raise ClusterUnavailable(f"{node.name}'s server script outlived its VM") from None

    async def restart(self, node: Node) -> None:
        """Boot a stopped node again; it rejoins the cluster from its own data."""
        self._spawn(node)
        await self._wait_booted(node)

    def tail(self, node: Node, lines: int = 30) -> str:
        """The end of a node's log files."""
        texts = []
        for path in [node.log_path, *sorted((node.base / "log").glob("*.log"))]:
            with contextlib.suppress(OSError):
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def stop(self) -> None:
        """Kill every node and the cluster's epmd; remove all their files."""
        for node in self.nodes:
            if not node.running:
                continue
            pid = node.beam_pid()
            if pid is None:  # still booting: the server script passes SIGTERM on to its VM
                assert node.proc is not None
                node.proc.terminate()
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for node in self.nodes:
            if node.proc is not None:
                reap(node.proc, timeout_s=15)
        if self._epmd is not None:
            self._epmd.terminate()
            reap(self._epmd, timeout_s=5)
        shutil.rmtree(self.root, ignore_errors=True)
