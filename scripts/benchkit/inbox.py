"""The `inbox` phase: N open inbox WebSockets, then IN_APP sends to their subscribers.

Measured: the API's resident memory per open socket (RSS after opening them, less before,
over N), and for every notification the time from the worker's write of the inbox item
(its `createdAt`, stamped by the worker as it writes) to the `message.created` frame on the
socket, and from the API call to that frame. Both clocks are this machine's. The sockets'
client runs in the bench process, so it competes for the same two cores as the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import psutil
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchkit.load import LoadGenerator
from benchkit.records import percentiles

RPC = "/api/v1/notifications/"
OPEN_CONCURRENCY = 50


@dataclass
class _Socket:
    index: int
    conn: ClientConnection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _read(sock: _Socket, on_created: Callable[[], None]) -> None:
    try:
        async for raw in sock.conn:
            now = time.time()
            frame = orjson.loads(raw)
            if frame["type"] == "counts":
                sock.ready.set()
            elif frame["type"] == "message.created":
                sock.arrivals.append((now, frame["message"]))
                on_created()
    except ConnectionClosed:
        pass


async def measure_inbox(
    *,
    base_url: str,
    api_key: str,
    api_pids: list[int],
    sockets: int,
    sends: int,
    concurrency: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Open `sockets` sockets, send `sends` IN_APP notifications across them, measure."""
    users = [f"inbox-bench-{i:05d}" for i in range(sockets)]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    say(f"inbox: {sockets} subscribers and sessions")
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as http:
        gate = asyncio.Semaphore(16)

        async def prepare(user: str) -> dict[str, str]:
            async with gate:
                body = orjson.dumps({"userId": user, "subscriberData": {}})
                async with http.post(RPC + "manage/create-subscriber", data=body) as r:
                    if r.status not in (200, 409):
                        raise RuntimeError(f"create-subscriber: HTTP {r.status}")
                async with http.post(
                    RPC + "get-inbox-session", data=b"{}", headers={"X-User-ID": user}
                ) as r:
                    if r.status != 200:
                        raise RuntimeError(f"get-inbox-session: HTTP {r.status}")
                    data: dict[str, str] = orjson.loads(await r.read())
                    return data

        sessions = await asyncio.gather(*(prepare(u) for u in users))

    rss_before = _rss(api_pids)
    received = 0
    all_in = asyncio.Event()

    def on_created() -> None:
        nonlocal received
        received += 1
        if received >= sends:
            all_in.set()

    say(f"inbox: opening {sockets} sockets")
    opened: list[_Socket] = []
    readers: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    started = time.perf_counter()

    async def open_one(i: int) -> None:
        async with gate:
            s = sessions[i]
            conn = await connect(f"{s['wsUrl']}?token={s['sessionToken']}", open_timeout=30)
            sock = _Socket(index=i, conn=conn)
            opened.append(sock)
            readers.append(asyncio.create_task(_read(sock, on_created)))
            async with asyncio.timeout(30):
                await sock.ready.wait()

    try:
        await asyncio.gather(*(open_one(i) for i in range(sockets)))
        open_s = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let the API settle before reading its memory
        rss_open = _rss(api_pids)
        say(f"inbox: {len(opened)} sockets open in {open_s:.1f} s; {sends} IN_APP sends")

        sent_at: dict[int, float] = {}

        def body_for(i: int) -> dict[str, Any]:
            sent_at[i] = time.time()
            return {
                "userId": users[i % sockets],
                "channel": "IN_APP",
                "content": {"title": f"bench {i}", "body": "inbox bench"},
            }

        async with LoadGenerator(
            base_url=base_url, api_key=api_key, max_connections=concurrency
        ) as gen:
            load = await gen.burst(
                path=RPC + "manage/send", body_for=body_for, count=sends, concurrency=concurrency
            )
        try:
            async with asyncio.timeout(60):
                await all_in.wait()
        except TimeoutError:
            say(f"inbox: {received}/{sends} events arrived within 60 s")
    finally:
        for sock in opened:
            await sock.conn.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    write_to_socket: list[float] = []
    send_to_socket: list[float] = []
    for sock in opened:
        for arrived, message in sock.arrivals:
            write_to_socket.append((arrived - _epoch(message["createdAt"])) * 1000)
            index = int(str(message["title"]).split()[-1])
            if index in sent_at:
                send_to_socket.append((arrived - sent_at[index]) * 1000)
    return {
        "sockets": sockets,
        "sockets_open": len(opened),
        "open_s": round(open_s, 2),
        "sends": sends,
        "accepted": load.accepted,
        "errors": dict(load.errors),
        "send_concurrency": concurrency,
        "sends_per_s": round(load.accepted / load.elapsed_s, 1) if load.elapsed_s else 0.0,
        "events_received": received,
        "write_to_socket_ms": percentiles(write_to_socket),
        "send_to_socket_ms": percentiles(send_to_socket),
        "api_rss_mib_before": round(rss_before / 2**20, 1),
        "api_rss_mib_open": round(rss_open / 2**20, 1),
        "api_memory_per_socket_kib": round((rss_open - rss_before) / max(1, len(opened)) / 1024, 1),
        "api_processes": len(api_pids),
        "method": "RSS of the API processes after opening the sockets less before, per socket; "
        "latency from the item's createdAt (stamped by the worker as it writes) to the frame",
    }


def render_inbox(inbox: dict[str, Any], console: Console) -> None:
    """The phase as a small table."""
    if not inbox.get("sockets"):
        return
    table = Table(title=f"inbox: {inbox['sockets_open']} open sockets")
    for col in ("what", "p50 / p95 / p99 / max ms", "notes"):
        table.add_column(col)
    w, s = inbox["write_to_socket_ms"], inbox["send_to_socket_ms"]
    table.add_row(
        "worker write → socket",
        f"{w['p50']:.0f} / {w['p95']:.0f} / {w['p99']:.0f} / {w['max']:.0f}",
        f"{inbox['events_received']}/{inbox['sends']} events",
    )
    table.add_row(
        "API call → socket",
        f"{s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f} / {s['max']:.0f}",
        f"{inbox['sends_per_s']:,.0f} sends/s at c={inbox['send_concurrency']}",
    )
    table.add_row(
        "API memory per socket",
        "",
        f"{inbox['api_memory_per_socket_kib']:.1f} KiB ({inbox['api_rss_mib_before']} → "
        f"{inbox['api_rss_mib_open']} MiB)",
    )
    console.print(table)
