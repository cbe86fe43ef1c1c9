"""A RabbitMQ cluster behind one setting: `RABBITMQ_URL` may list its nodes, comma-separated.

aio-pika's robust connection reconnects to the one URL it was given (aio-pika issue #141), so
`NodeListConnection` moves it along the list: whenever a connection closes, or an attempt to
open one fails, the next attempt goes to the next node. Its channels, declarations and
consumers are restored there as after any reconnect. The first URL's query parameters
(heartbeat, …) apply to every node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aio_pika import RobustConnection
from aio_pika.connection import make_url


def node_urls(value: str) -> list[str]:
    """The AMQP URLs in `value` (one, or several separated by commas), in order."""
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("RABBITMQ_URL names no node")
    for url in urls:
        if urlsplit(url).scheme not in ("amqp", "amqps"):
            raise ValueError(f"RABBITMQ_URL: {url!r} is not an amqp:// or amqps:// URL")
    return urls


class NodeListConnection(RobustConnection):
    """A robust connection that moves to the next node each time a connection goes away."""

    def __init__(self, urls: Sequence[str], *, first: int = 0, **kwargs: Any) -> None:
        self._nodes = [make_url(url) for url in urls]
        self._node = first % len(self._nodes)
        super().__init__(self._nodes[self._node], **kwargs)

    @property
    def node(self) -> str:
        """`host:port` of the node this connection uses, or tries next."""
        url = self._nodes[self._node]
        return f"{url.host}:{url.port}" if url.port else str(url.host)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Called when an open connection closes and when an attempt fails (aio-pika passes
        # the failure the same way), so no node is retried while another may answer.
        if len(self._nodes) > 1 and not self._close_called:
            self._node = (self._node + 1) % len(self._nodes)
            self.url = self._nodes[self._node]
        await super()._on_connection_close(closing)
