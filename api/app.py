"""`create_app(settings)`: the FastAPI application and its start-up / shut-down."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from pymongo.errors import DuplicateKeyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import enforce_access
from api.context import AppContext
from api.errors import install_error_handlers
from api.inbox.hub import RealtimeHub
from api.middleware import BodyLimitMiddleware, ObserveMiddleware
from api.openapi import without_fastapi_422
from api.ratelimit import RateLimiter
from api.receipts.verify import SnsVerifier
from api.routes import (
    activity,
    api_keys,
    chat,
    dashboard,
    dead_letters,
    dev,
    digests,
    health,
    inbox,
    inbox_realtime,
    metrics,
    notifications,
    preferences,
    promotion,
    providers,
    receipts,
    scheduling,
    sending,
    subscribers,
    suppressions,
    templates,
    tenant_settings,
    topics,
    trigger,
    user,
    webhooks,
    workflows,
)
from shared.crypto import CredentialCipher
from shared.db.client import connect_database
from shared.domain import Environment
from shared.logging import configure_logging
from shared.messaging.broker import Broker
from shared.messaging.queue_stats import QueueStats
from shared.messaging.topology import Topology
from shared.pipeline import PipelineHooks, SendPipeline
from shared.settings import Settings
from shared.webhooks.events import WebhookEvents

log = structlog.get_logger(__name__)

BOOTSTRAP_TENANT = "default"


class CorrelationIdMiddleware:
    """Takes `X-Request-ID` / `X-Correlation-ID` or makes one; binds it to logs; echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-correlation-id") or headers.get(b"x-request-id")
        correlation_id = raw.decode("latin-1")[:128] if raw else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (b"x-correlation-id", correlation_id.encode("latin-1"))
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")


def bootstrap_environment(settings: Settings) -> str:
    """The bootstrap key acts in production in a production deployment, else in development
    (where workflows and templates are edited)."""
    production = settings.environment == "production"
    return (Environment.PRODUCTION if production else Environment.DEVELOPMENT).value


def create_app_from_env() -> FastAPI:
    """The app of one uvicorn worker process when the API runs several (an entry point)."""
    settings = Settings()
    configure_logging(settings, process="api")
    return create_app(settings)


def create_app(settings: Settings, *, hooks: PipelineHooks | None = None) -> FastAPI:
    """Build the app; connections open in the lifespan, so import has no side effects.

    `hooks` are for test harnesses only (e.g. a crash between record write and publish).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = connect_database(
            url=settings.mongodb_url,
            name=settings.database_name,
            timeout_ms=settings.mongo_timeout_ms,
            retry_writes=settings.retry_writes,
        )
        broker = Broker(
            url=settings.rabbitmq_url,
            topology=Topology(settings.prefix, quorum=settings.quorum_queues),
            publish_timeout_s=settings.publish_timeout_s,
        )
        await db.wait_ready()
        if settings.bootstrap_api_key:
            # With several API processes, two upserts can race; the loser's key exists anyway.
            with contextlib.suppress(DuplicateKeyError):
                await db.api_keys.ensure(
                    key=settings.bootstrap_api_key,
                    tenant_id=BOOTSTRAP_TENANT,
                    scopes=["admin"],
                    name="bootstrap",
                    environment=bootstrap_environment(settings),
                )
        await broker.connect()
        hub = RealtimeHub(broker=broker)
        await hub.start()
        app.state.inbox_hub = hub
        http = httpx.AsyncClient(timeout=settings.provider_timeout_s)
        app.state.ctx = AppContext(
            settings=settings,
            db=db,
            broker=broker,
            cipher=CredentialCipher(settings.secret_key, previous=settings.previous_secrets),
            pipeline=SendPipeline(db=db, broker=broker, hooks=hooks),
            rate_limiter=RateLimiter(
                repo=db.rate_limits,
                default_limit=settings.rate_limit_requests,
                window_s=settings.rate_limit_window_s,
            ),
            queue_stats=QueueStats(broker=broker, cache_s=settings.queue_stats_cache_s),
            http=http,
            webhook_events=WebhookEvents(
                webhooks=db.webhooks, broker=broker, ttl_s=settings.webhooks_cache_ttl_s
            ),
            sns=SnsVerifier(
                http=http,
                url_pattern=settings.sns_cert_url_pattern,
                timeout_s=settings.provider_timeout_s,
            ),
        )
        log.info("api_started", prefix=settings.prefix)
        try:
            yield
        finally:
            await http.aclose()
            await hub.close()
            await app.state.ctx.queue_stats.close()
            await broker.close()
            await db.close()
            log.info("api_stopped")

    app = FastAPI(
        title="notify",
        summary="Self-hosted multi-channel notifications",
        version="0.1.0",
        lifespan=lifespan,
        # Authentication, the key's rate limit and the route's scope (api/access.py), for
        # every route, those added later included.
        dependencies=[Depends(enforce_access)],
    )
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_fastapi_422(get_openapi_schema(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    app.include_router(notifications.router)
    for module in (sending, subscribers, topics, providers, templates):
        app.include_router(module.router)
    for module in (workflows, trigger, promotion, activity, tenant_settings):
        app.include_router(module.router)
    app.include_router(dead_letters.router)
    app.include_router(scheduling.router)
    app.include_router(digests.router)
    app.include_router(api_keys.router)
    app.include_router(user.router)
    app.include_router(preferences.router)
    app.include_router(chat.router)
    app.include_router(suppressions.router)
    app.include_router(inbox.router)
    app.include_router(inbox_realtime.router)
    app.include_router(webhooks.router)
    app.include_router(receipts.router)
    if settings.dev_endpoints:
        app.include_router(dev.router)
        app.include_router(inbox_realtime.demo_router)
    if settings.cors_origins:
        # Browsers on these origins may call the inbox RPCs with a session token.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        )
    return app


def get_openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's generated document for `app`."""
    return get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
