"""A fake APNs speaking HTTP/2 (h2c, prior knowledge) with Apple's statuses and `reason` bodies.

Built on the `h2` state machine over asyncio: a Starlette fake cannot be used, because ASGI
servers end every stream with an empty DATA frame where Apple sends HEADERS + END_STREAM.
The fake checks the ES256 provider token against the key it minted (`kid`, `iss`, age), the
topic and the device token, and answers 200 with `apns-id` and no body like Apple does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ApnsRequest", "FakeApns"]

MAX_PAYLOAD = 4096


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def token(self) -> str:
        """The device token in the path."""
        return self.path.rsplit("/", 1)[-1]

    def json(self) -> Any:
        """The payload."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timestamp: int | None = None


class FakeApns:
    """`POST /3/device/<token>` over h2c; use as `async with`."""

    def __init__(
        self,
        *,
        key_id: str = "FAKEKEY123",
        team_id: str = "FAKETEAM12",
        bundle_id: str = "com.example.app",
    ) -> None:
        self.key_id, self.team_id, self.bundle_id = key_id, team_id, bundle_id
        key = ec.generate_private_key(ec.SECP256R1())
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key = key.public_key()
        self.unregistered: dict[str, int] = {}  # token -> ms since epoch it went invalid (410)
        self.bad_tokens: set[str] = set()  # 400 BadDeviceToken
        self.requests: list[ApnsRequest] = []
        self.notifications: list[ApnsRequest] = []  # accepted, in order
        self.accepted = 0
        self.lean = False  # keep nothing, only count (the bench's long runs)
        self.delay_s = 0.0  # answer this late (timeouts)
        self.tokens_seen: set[str] = set()  # distinct provider JWTs received
        self.expire_tokens_issued_before: float | None = None  # -> 403 ExpiredProviderToken
        self._scripts: deque[_Answer] = deque()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._arrived = asyncio.Condition()
        self._connections: set[_H2Server] = set()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, `http://127.0.0.1:<port>` (h2c)."""
        if self._port is None:
            raise RuntimeError("FakeApns is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _H2Server(self), "127.0.0.1", port)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop the connections."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.close()
            self._server = None
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def credentials(self, *, production: bool = True) -> dict[str, Any]:
        """What `configure-provider` takes for this fake."""
        return {
            "keyId": self.key_id,
            "teamId": self.team_id,
            "privateKey": self.private_key_pem,
            "bundleId": self.bundle_id,
            "production": production,
        }

    def reset(self) -> None:
        """Forget requests, notifications, token sets and scripts; keep the key."""
        self.unregistered.clear()
        self.bad_tokens.clear()
        self.requests.clear()
        self.notifications.clear()
        self.tokens_seen.clear()
        self._scripts.clear()
        self.accepted = 0
        self.delay_s = 0.0
        self.expire_tokens_issued_before = None

    def script(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests with this status and `{"reason"}`."""
        self._scripts.extend([_Answer(status, reason, dict(headers or {}))] * times)

    async def wait_for_requests(self, count: int, *, timeout_s: float = 5.0) -> list[ApnsRequest]:
        """Wait until at least `count` requests have arrived."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    # --- Apple's behaviour ----------------------------------------------------------------

    async def _handle(self, request: ApnsRequest) -> _Answer:
        if not self.lean:
            self.requests.append(request)
            async with self._arrived:
                self._arrived.notify_all()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._scripts:
            return self._scripts.popleft()
        answer = self._judge(request)
        if answer.status == 200:
            self.accepted += 1
            if not self.lean:
                self.notifications.append(request)
        return answer

    def _judge(self, request: ApnsRequest) -> _Answer:
        headers = request.headers
        if headers.get(":method") != "POST":
            return _Answer(405, "MethodNotAllowed")
        if not request.path.startswith("/3/device/"):
            return _Answer(404, "BadPath")
        auth_error = self._check_token(headers.get("authorization", ""))
        if auth_error is not None:
            return _Answer(403, auth_error)
        topic = headers.get("apns-topic")
        if not topic:
            return _Answer(400, "MissingTopic")
        if topic != self.bundle_id:
            return _Answer(400, "DeviceTokenNotForTopic")
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return _Answer(400, "BadPriority")
        token = request.token
        if not token:
            return _Answer(400, "MissingDeviceToken")
        try:
            int(token, 16)
        except ValueError:
            return _Answer(400, "BadDeviceToken")
        if token in self.bad_tokens:
            return _Answer(400, "BadDeviceToken")
        if token in self.unregistered:
            return _Answer(410, "Unregistered", timestamp=self.unregistered[token])
        if not request.body:
            return _Answer(400, "PayloadEmpty")
        if len(request.body) > MAX_PAYLOAD:
            return _Answer(413, "PayloadTooLarge")
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _Answer(400, "BadRequest")  # not Apple's word, but Apple answers 400 too
        if not isinstance(payload, dict) or "aps" not in payload:
            return _Answer(400, "PayloadEmpty")
        return _Answer(200)

    def _check_token(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return "InvalidProviderToken"
        iat = float(claims["iat"])
        cutoff = self.expire_tokens_issued_before
        if time.time() - iat > 3600 or (cutoff is not None and iat < cutoff):
            return "ExpiredProviderToken"
        self.tokens_seen.add(token)
        return None


class _H2Server(asyncio.Protocol):
    """One client connection: h2 frames in, Apple-shaped answers out."""

    def __init__(self, fake: FakeApns) -> None:
        self._fake = fake
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self._conn = h2.connection.H2Connection(config=config)
        self._streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self._transport: asyncio.Transport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._fake._connections.add(self)
        self._conn.initiate_connection()
        transport.write(self._conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fake._connections.discard(self)

    def close(self) -> None:
        """Drop the connection (the fake is stopping)."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}
                self._streams[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self._streams[event.stream_id][1].extend(event.data or b"")
                self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                headers, body = self._streams.pop(event.stream_id)
                request = ApnsRequest(
                    path=headers.get(":path", ""), headers=headers, body=bytes(body)
                )
                task = asyncio.get_running_loop().create_task(
                    self._answer(event.stream_id, request)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(event, h2.events.ConnectionTerminated) and self._transport:
                self._transport.close()
        self._flush()

    async def _answer(self, stream_id: int, request: ApnsRequest) -> None:
        answer = await self._fake._handle(request)
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        headers = [(":status", str(answer.status)), ("apns-id", apns_id), *answer.headers.items()]
        body = b""
        if answer.reason is not None:
            error: dict[str, Any] = {"reason": answer.reason}
            if answer.timestamp is not None:
                error["timestamp"] = answer.timestamp
            body = json.dumps(error).encode()
            headers.append(("content-type", "application/json"))
        if self._transport is None:
            return
        try:
            self._conn.send_headers(stream_id, headers, end_stream=not body)
            if body:
                self._conn.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.H2Error:
            return  # the client reset the stream (it timed out)
        self._flush()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)
