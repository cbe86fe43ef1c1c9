"""The shared HTTP helpers: back-off headers and transport-failure classification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.utils import formatdate

import httpx
import pytest

from shared.providers.base import Outcome
from shared.providers.http import (
    classify_transport_error,
    parse_rate_limit_reset,
    parse_retry_after,
    read_json,
)

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        (formatdate(NOW - 90, usegmt=True), 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(int(NOW) + 42), 42.0),
        (str(int(NOW) - 42), 0.0),
        (None, None),
        ("later", None),
        ("-1", None),
    ],
)
def test_parse_rate_limit_reset(value: str | None, expected: float | None) -> None:
    assert parse_rate_limit_reset(value, now=NOW) == expected


def test_read_json_tolerates_non_json() -> None:
    assert read_json(httpx.Response(200, json={"a": 1})) == {"a": 1}
    assert read_json(httpx.Response(502, text="<html>")) is None
    assert read_json(httpx.Response(204)) is None


@pytest.mark.parametrize(
    ("exc", "reason", "detail"),
    [
        (httpx.ReadTimeout(""), "timeout", "ReadTimeout"),
        (httpx.ConnectTimeout("connect timed out"), "timeout", "ConnectTimeout: connect timed out"),
        (httpx.ConnectError("refused"), "connection_error", "ConnectError: refused"),
        (httpx.ReadError("reset by peer"), "network_error", "ReadError: reset by peer"),
        (httpx.RemoteProtocolError("bad"), "protocol_error", "RemoteProtocolError: bad"),
        (httpx.UnsupportedProtocol("ftp"), "transport_error", "UnsupportedProtocol: ftp"),
        (httpx.DecodingError("gzip"), "transport_error", "DecodingError: gzip"),
    ],
)
def test_classify_transport_error(exc: httpx.HTTPError, reason: str, detail: str) -> None:
    result = classify_transport_error(exc)

    assert result.outcome is Outcome.RETRY
    assert result.reason == reason
    assert result.detail == detail
    assert result.status_code is None


async def test_refused_connection_over_real_socket(
    http: httpx.AsyncClient, closed_url: str
) -> None:
    with pytest.raises(httpx.HTTPError) as caught:
        await http.get(closed_url)

    assert classify_transport_error(caught.value).reason == "connection_error"


@pytest.fixture
async def garbage_url() -> AsyncIterator[str]:
    """A TCP server that answers every connection with something that is not HTTP."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HELLO THERE\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_protocol_error_over_real_socket(http: httpx.AsyncClient, garbage_url: str) -> None:
    with pytest.raises(httpx.HTTPError) as caught:
        await http.get(garbage_url)

    assert classify_transport_error(caught.value).reason == "protocol_error"
