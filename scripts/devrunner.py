"""Dev supervisor: an embedded MongoDB, the API, a worker per channel, and the other roles.

Run through `./scripts/dev`. This is an entry point, so it reads the environment itself and
hands the children theirs. Children run in their own process groups: Ctrl-C reaches only this
supervisor, which then stops the API and the workers first and the database last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TextIO
from urllib.parse import urlsplit, urlunsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.db.embedded import embedded_server_args
from shared.domain import Channel
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
KEY_FILE = DATA_DIR / "dev-api-key"
MONGO_DIR = DATA_DIR / "mongo"

PREFIX_WIDTH = 7  # "in_app" plus one space, so every "|" lines up
STOP_GRACE_S = 10.0
MONGO_READY_S = 30.0
POLL_S = 0.25

_RESET = "\033[0m"
_COLORS = {
    "dev": "\033[1m",
    "mongo": "\033[90m",
    "api": "\033[36m",
    Channel.EMAIL.value: "\033[32m",
    Channel.PUSH.value: "\033[35m",
    Channel.SMS.value: "\033[33m",
    Channel.CHAT.value: "\033[34m",
    Channel.IN_APP.value: "\033[96m",
    "maint": "\033[37m",
    "digest": "\033[93m",
    "events": "\033[94m",
    "fanout": "\033[95m",
}


class Console:
    """Writes whole lines from several threads, each behind a coloured fixed-width prefix."""

    def __init__(self, stream: TextIO, *, color: bool) -> None:
        """Write to `stream`, with ANSI colours when `color` is true."""
        self._stream = stream
        self._color = color
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        """Print one line of `name`'s output."""
        prefix = f"{name:<{PREFIX_WIDTH}}|"
        if self._color:
            prefix = f"{_COLORS.get(name, '')}{prefix}{_RESET}"
        self._write(f"{prefix} {text}\n")

    def say(self, text: str) -> None:
        """Print a message of the supervisor itself."""
        self.line("dev", text)

    def raw(self, text: str) -> None:
        """Print text without a prefix (the banner stays copy-pasteable)."""
        self._write(text if text.endswith("\n") else text + "\n")

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # our own stdout went away; the children must still be stopped


class StopSignal:
    """Counts SIGINT/SIGTERM/SIGHUP: the first asks for a clean stop, the second for a kill."""

    def __init__(self) -> None:
        """Start with no stop requested."""
        self.event = threading.Event()
        self.count = 0

    def install(self) -> None:
        """Route the stop signals here."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.event.set()

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.event.is_set()

    @property
    def forced(self) -> bool:
        """True once a second stop signal arrived."""
        return self.count >= 2

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop signal; return whether one arrived."""
        return self.event.wait(seconds)


@dataclass(slots=True)
class Child:
    """A started child process and the thread copying its output."""

    name: str
    proc: subprocess.Popen[str]
    reader: threading.Thread

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.proc.poll()


class Supervisor:
    """Starts children with merged, prefixed output, and stops them TERM-then-KILL."""

    def __init__(self, console: Console, stop: StopSignal) -> None:
        """Print through `console`; escalate to SIGKILL early when `stop` is forced."""
        self.console = console
        self.stop = stop
        self.children: list[Child] = []
        self.cleanup: list[str] = []  # directories removed once every child has stopped

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start `argv` in the repository root, in its own process group."""
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            process_group=0,
        )
        assert proc.stdout is not None  # we asked for a pipe
        reader = threading.Thread(
            target=self._pump, args=(name, proc.stdout), name=f"out-{name}", daemon=True
        )
        reader.start()
        child = Child(name=name, proc=proc, reader=reader)
        self.children.append(child)
        return child

    def _pump(self, name: str, stream: IO[str]) -> None:
        with stream:
            for text in stream:
                self.console.line(name, text.rstrip("\r\n"))

    def first_dead(self, children: Sequence[Child]) -> Child | None:
        """The first of `children` that has exited, if any."""
        return next((c for c in children if c.exit_code is not None), None)

    def stop_all(self, children: Sequence[Child]) -> None:
        """SIGTERM each running child's group, wait up to the grace period, then SIGKILL."""
        running = [c for c in children if c.exit_code is None]
        for child in running:
            _signal_group(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and not self.stop.forced:
            if all(c.exit_code is not None for c in running):
                break
            time.sleep(0.1)
        for child in running:
            if child.exit_code is None:
                self.console.say(f"{child.name} did not stop in time: killing it")
            # Also reaches grandchildren left behind in the group by a child that did exit.
            _signal_group(child.proc, signal.SIGKILL)
            child.proc.wait()
        for child in children:
            child.reader.join(timeout=2.0)


def _signal_group(proc: subprocess.Popen[str], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def resolve_api_key(configured: str | None, key_file: Path) -> tuple[str, str]:
    """The admin API key and where it came from: the environment, the key file, or new."""
    if configured:
        return configured, "from NOTIFY_BOOTSTRAP_API_KEY"
    try:
        saved = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        saved = ""
    if saved:
        return saved, f"from {_shown(key_file)}"
    key = "nk_" + secrets.token_urlsafe(32)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        out.write(key + "\n")
    return key, f"new, saved in {_shown(key_file)}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_secantusd() -> str | None:
    """The `secantusd-py` next to this interpreter, else the one on PATH."""
    sibling = Path(sys.executable).parent / "secantusd-py"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("secantusd-py")


def mongo_answers(url: str) -> bool:
    """True when the server at `url` answers a `ping`."""
    client: MongoClient[dict[str, object]] = MongoClient(
        url,
        directConnection=True,
        serverSelectionTimeoutMS=500,
        connectTimeoutMS=500,
        socketTimeoutMS=1000,
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def start_mongo(
    sup: Supervisor, env: Mapping[str, str], *, storage: Path = MONGO_DIR
) -> str | None:
    """Start SecantusDB on a free port with data in `storage`; return its URL once it answers."""
    exe = find_secantusd()
    if exe is None:
        sup.console.say("secantusd-py not found: install the project (pip install -e '.[dev]')")
        return None
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [exe, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage)]
    argv += embedded_server_args(
        env.get("NOTIFY_EMBEDDED_DB_CACHE")
        or str(Settings.model_fields["embedded_db_cache"].default)
    )
    child = sup.start("mongo", argv, env)
    url = f"mongodb://127.0.0.1:{port}"
    deadline = time.monotonic() + MONGO_READY_S
    while time.monotonic() < deadline and not sup.stop.requested:
        # Checking the child after the ping too: if another server took the port in the
        # meantime, it would answer for ours.
        if child.exit_code is None and mongo_answers(url) and child.exit_code is None:
            return url
        if child.exit_code is not None:
            sup.console.say(f"mongo exited with code {child.exit_code} before it was ready")
            return None
        sup.stop.wait(POLL_S)
    if not sup.stop.requested:
        sup.console.say(f"mongo did not answer a ping within {MONGO_READY_S:.0f} s")
    return None


def wait_ready(sup: Supervisor, url: str, children: Sequence[Child], timeout: float) -> bool:
    """Poll `url` until it answers 200; False if a child dies, a stop arrives or time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        dead = sup.first_dead(children)
        if dead is not None:
            sup.console.say(
                f"{dead.name} exited with code {dead.exit_code} before the API was ready "
                "(its output is above)"
            )
            return False
        if sup.stop.requested:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                if resp.status == 200:
                    return True
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        sup.stop.wait(0.5)
    sup.console.say(f"{url} did not answer 200 within {timeout:.0f} s (last: {last})")
    if last.startswith("HTTP 503"):
        sup.console.say("503 means RabbitMQ or MongoDB is unreachable: check RABBITMQ_URL")
    return False


def redact(url: str) -> str:
    """`url` with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


_DEMO_USER = "123e4567-e89b-12d3-a456-426614174000"  # the seed-003 example's user


def banner(
    *,
    base: str,
    key: str,
    key_origin: str,
    env: Mapping[str, str],
    mongo: str,
    metrics: str = "",
) -> str:
    """The ready message: URLs, the admin key and curl commands to paste (bash or zsh)."""
    rule = "─" * 78
    rabbit = env.get("RABBITMQ_URL") or str(Settings.model_fields["rabbitmq_url"].default)
    return f"""
{rule}
 notify is ready ({env.get("NOTIFY_ENVIRONMENT")}, sandbox={env.get("NOTIFY_SANDBOX_DEFAULT")})

   API         {base}
   OpenAPI     {base}/docs
   Inbox demo  {base}/inbox/demo#key={key}&user={_DEMO_USER}
   Admin key   {key}   ({key_origin})
   MongoDB     {redact(env.get("MONGODB_URL", ""))}{mongo}
   RabbitMQ    {redact(rabbit)}

 Try it (a subscriber, a template, then the seed-003 request; the sandbox records it):

KEY={key}; BASE={base}; API=$BASE/api/v1/notifications
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
curl -sS "${{H[@]}}" $API/manage/create-subscriber -d '{{"userId": "{_DEMO_USER}",
  "subscriberData": {{"firstName": "Ada", "email": "ada@example.com"}}}}'; echo
curl -sS "${{H[@]}}" $API/manage/create-template -d '{{"templateCode": "welcome_email",
  "channel": "EMAIL", "subject": "Welcome, {{{{ name }}}}!", "body": "Hi {{{{ name }}}}"}}'; echo
curl -sS "${{H[@]}}" $API -d '{{"notification_type": "email", "user_id": "{_DEMO_USER}",
  "template_code": "welcome_email", "variables": {{"name": "Ada"}},
  "request_id": "req-{uuid.uuid4()}", "priority": 1}}'; echo
curl -sS "${{H[@]}}" $BASE/dev/outbox; echo

{metrics} Ctrl-C stops everything.
{rule}
"""


def metrics_banner(*, base: str, workers: Mapping[str, str]) -> str:
    """Where the dashboard and every process's Prometheus metrics are."""
    lines = [
        f" Dashboard   {base}/dashboard   (sign in with the admin key above)",
        f" Metrics     api     {base}/metrics",
    ]
    lines += [f"             {name:<7} {url}" for name, url in workers.items()]
    return "\n".join(lines) + "\n"


def child_env(base: Mapping[str, str], *, api_key: str) -> dict[str, str]:
    """The children's environment: `base` plus the development defaults not already set."""
    env = dict(base)
    env["NOTIFY_BOOTSTRAP_API_KEY"] = api_key
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the prefixer as they are written
    for name, value in {
        "NOTIFY_SANDBOX_DEFAULT": "true",
        "NOTIFY_DEV_ENDPOINTS": "true",
        "NOTIFY_ENVIRONMENT": "development",
        # The children write to a pipe, which would otherwise make them log JSON.
        "NOTIFY_LOG_JSON": "false",
    }.items():
        env.setdefault(name, value)
    return env


def api_address(env: Mapping[str, str]) -> tuple[str, int]:
    """The host to probe and the port the API will listen on."""
    host = env.get("NOTIFY_API_HOST") or str(Settings.model_fields["api_host"].default)
    port = int(env.get("NOTIFY_API_PORT") or Settings.model_fields["api_port"].default)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, port


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/dev",
        description="Run the API, the channel workers and an embedded MongoDB for development.",
    )
    parser.add_argument("--no-workers", action="store_true", help="start only the API")
    parser.add_argument(
        "--mongo-only",
        action="store_true",
        help="start only the embedded MongoDB and print its URL (for running tests by hand)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for /health/ready (default: 60)",
    )
    return parser.parse_args(argv)


METRICS_BASE_PORT = 9101  # workers' metrics ports: 9101, 9102, … in start order


def start_services(
    sup: Supervisor, env: Mapping[str, str], *, workers: bool = True
) -> dict[str, str]:
    """Start the API and, unless told not to, NOTIFY_WORKER_PROCESSES workers per channel, the
    maintenance, digest, events and fan-out workers, each with a metrics port of its own; their
    metrics URLs by name."""
    python = sys.executable
    sup.start("api", [python, "-m", "api"], env)
    if not workers:
        return {}
    copies = int(
        env.get("NOTIFY_WORKER_PROCESSES") or Settings.model_fields["worker_processes"].default
    )
    roles = [
        (channel.value if n == 1 else f"{channel.value}{n}", channel.value)
        for channel in Channel
        for n in range(1, copies + 1)
    ] + [("maint", "maintenance"), ("digest", "digest"), ("events", "events"), ("fanout", "fanout")]
    urls: dict[str, str] = {}
    host = env.get("NOTIFY_METRICS_HOST") or str(Settings.model_fields["metrics_host"].default)
    for index, (name, role) in enumerate(roles):
        port = METRICS_BASE_PORT + index
        urls[name] = f"http://{host}:{port}/metrics"
        sup.start(name, [python, "-m", "workers", role], {**env, "NOTIFY_METRICS_PORT": str(port)})
    return urls


def supervise(args: argparse.Namespace, sup: Supervisor) -> int:
    """Start everything, wait until the API is ready, then run until a stop or a death."""
    say = sup.console.say
    env = dict(os.environ)
    host, port = api_address(env)
    if not args.mongo_only and is_listening(host, port):
        say(f"something already listens on {host}:{port}: stop it or set NOTIFY_API_PORT")
        return 1
    mongo_note = ""
    if not env.get("MONGODB_URL"):
        url = start_mongo(sup, env)
        if url is None:
            return 0 if sup.stop.requested else 1
        env["MONGODB_URL"] = url
        mongo_note = f"   (SecantusDB, data in {_shown(MONGO_DIR)})"
        say(f"mongo ready at {url}")
    if args.mongo_only:
        say(f"MONGODB_URL={env['MONGODB_URL']} — Ctrl-C stops it")
        return watch(sup, sup.children)

    key, key_origin = resolve_api_key(env.get("NOTIFY_BOOTSTRAP_API_KEY"), KEY_FILE)
    env = child_env(env, api_key=key)
    # One metrics directory for every process of this run (prometheus-client's multiprocess
    # mode): the API's /metrics then adds up the workers' counters too (deliveries, …).
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=DATA_DIR)
        sup.cleanup.append(env["PROMETHEUS_MULTIPROC_DIR"])

    metrics = start_services(sup, env, workers=not args.no_workers)

    base = f"http://{host}:{port}"
    if not wait_ready(sup, f"{base}/health/ready", sup.children, args.ready_timeout):
        return 0 if sup.stop.requested else 1
    sup.console.raw(
        banner(
            base=base,
            key=key,
            key_origin=key_origin,
            env=env,
            mongo=mongo_note,
            metrics=metrics_banner(base=base, workers=metrics) + "\n",
        )
    )
    return watch(sup, sup.children)


def watch(sup: Supervisor, children: Sequence[Child]) -> int:
    """Block until a stop signal (0) or until one of `children` exits (1)."""
    while not sup.stop.wait(POLL_S):
        dead = sup.first_dead(children)
        if dead is not None:
            sup.console.say(f"{dead.name} exited unexpectedly with code {dead.exit_code}")
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dev stack until Ctrl-C; non-zero if anything failed."""
    args = parse_args(argv)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    console = Console(sys.stdout, color=color)
    stop = StopSignal()
    stop.install()
    sup = Supervisor(console, stop)
    code = 1
    try:
        code = supervise(args, sup)
    finally:
        if sup.children:
            console.say("stopping…")
        # The database goes last, so the others can still write while they shut down.
        sup.stop_all([c for c in sup.children if c.name != "mongo"])
        sup.stop_all([c for c in sup.children if c.name == "mongo"])
        for path in sup.cleanup:
            shutil.rmtree(path, ignore_errors=True)
    console.say("stopped" if code == 0 else f"stopped (exit code {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
