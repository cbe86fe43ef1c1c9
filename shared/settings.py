"""The one settings class; read only at entry points and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.domain import Channel
from shared.messaging.nodes import node_urls


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one channel retries a transient failure."""

    max_attempts: int
    base_s: float
    max_backoff_s: float


_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "dev-secret-key-change-me"}
DEV_SECRET_KEY = "dev-secret-key-change-me"


class Settings(BaseSettings):
    """Every setting of every process, from `NOTIFY_*` variables (and the two service URLs)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # One URL, or a cluster's nodes separated by commas: processes connect to the first that
    # answers and move to the next when their node goes away (shared/messaging/nodes.py).
    rabbitmq_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        validation_alias="RABBITMQ_URL",
    )
    # Replicated quorum queues for the channel, digest and fan-out queues (for a cluster);
    # priority 4-5 then goes to `<channel>.high.queue`. Off: classic queues, one node.
    quorum_queues: bool = False
    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017", validation_alias="MONGODB_URL")
    # WiredTiger cache of the embedded secantusd-py that scripts/dev, the tests and the bench
    # start when MONGODB_URL is unset (shared/db/embedded.py).
    embedded_db_cache: str = Field(default="256M", pattern=r"^[0-9]+[KMG]$")
    # Empty by default, so a default deployment has exactly the spec's names (`email.queue`,
    # `notifications.direct`); tests and side-by-side deployments set one.
    prefix: str = Field(default="", pattern=r"^([a-z][a-z0-9_-]{0,40})?$")
    # The database; by default named after the prefix, or `notify` without one.
    database: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,60}$")
    # Retryable writes need a replica set: on by default where the URL names one.
    mongodb_retry_writes: bool | None = None
    api_port: int = 8000
    api_host: str = "127.0.0.1"
    bootstrap_api_key: str | None = None
    secret_key: str = DEV_SECRET_KEY
    gateway_mode: bool = False
    # In gateway mode the gateway may assert roles in this header (comma-separated); the
    # admin role reaches the /manage/ RPCs, trusted like X-User-ID.
    gateway_roles_header: str = "X-User-Roles"
    gateway_admin_role: str = "admin"
    sandbox_default: bool = False
    dev_endpoints: bool = False
    log_level: str = "INFO"
    log_json: bool | None = None

    publish_timeout_s: float = 5.0
    mongo_timeout_ms: int = 3000
    worker_prefetch: int = 200
    # How many processes the launchers start: uvicorn workers for the API (python -m api), and
    # copies of each channel's worker (scripts/dev). Every process is stateless.
    api_processes: int = Field(default=1, ge=1)
    worker_processes: int = Field(default=1, ge=1)
    worker_lease_s: int = 60
    provider_timeout_s: float = 10.0
    bulk_max_recipients: int = 100

    # Retries (DESIGN.md §7 rule 4): full-jitter exponential backoff through the delay levels.
    retry_max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_backoff_s: float = Field(default=600.0, ge=1)
    retry_max_attempts_by_channel: dict[Channel, int] = Field(default_factory=dict)
    retry_max_backoff_s_by_channel: dict[Channel, float] = Field(default_factory=dict)
    # Circuit breaker per (tenant, provider), per worker process.
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    circuit_max_wait_s: float = Field(default=24 * 3600.0, gt=0)
    # Maintenance worker.
    maintenance_interval_s: float = Field(default=5.0, gt=0)
    outbox_grace_s: float = Field(default=30.0, gt=0)
    overdue_grace_s: float = Field(default=30.0, gt=0)
    maintenance_batch: int = Field(default=500, ge=1)
    # Topic fan-outs (docs/audience.md): subscriptions read and records written per batch, the
    # fan-out worker's lease (renewed every batch), and how long a stored fan-out may sit
    # untouched before the sweep publishes its message again.
    fanout_batch: int = Field(default=500, ge=1, le=5000)
    fanout_lease_s: float = Field(default=60.0, gt=0)
    fanout_stall_s: float = Field(default=120.0, gt=0)
    fanout_prefetch: int = Field(default=2, ge=1, le=50)
    # Digests: a digest holding this many events closes at once and a new one opens.
    digest_max_events: int = Field(default=1000, ge=1, le=1000)
    # Lifecycle.
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    # In-app inbox (docs/inbox.md): the public addresses clients are told to use (behind a
    # proxy the API's own address is wrong; unset, the request's own address is used), the
    # session tokens' lifetime, the WebSocket heartbeat, the events kept per subscriber for
    # resuming, and the browser origins that may call the inbox RPCs (CORS; none by default).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    public_ws_url: str | None = Field(default=None, pattern=r"^wss?://\S+$")
    inbox_session_ttl_s: int = Field(default=3600, ge=10, le=30 * 24 * 3600)
    inbox_heartbeat_s: float = Field(default=25.0, gt=0)
    inbox_events_kept: int = Field(default=500, ge=10, le=10_000)
    cors_origins: list[str] = Field(default_factory=list)
    # Delivery receipts and outbound webhooks (docs/webhooks.md). SNS signing certificates are
    # fetched only from URLs matching this pattern (AWS's own hosts; tests name a local one).
    sns_cert_url_pattern: str = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
    # Retries of an outbound webhook delivery, through the delay levels (Standard Webhooks'
    # schedule: ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); an endpoint failing this long
    # is disabled.
    webhook_retry_delays_s: list[int] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000]
    )
    webhook_disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_url_concurrency: int = Field(default=4, ge=1)  # calls in flight per endpoint URL
    webhook_circuit_threshold: int = Field(default=5, ge=1)
    webhook_circuit_cooldown_s: float = Field(default=60.0, gt=0)
    # How stale a process's "does this tenant have webhooks" answer may be.
    webhooks_cache_ttl_s: float = Field(default=5.0, ge=0)
    events_prefetch: int = Field(default=50, ge=1)
    novu_sync_max_attempts: int = Field(default=8, ge=1)

    @field_validator("rabbitmq_url")
    @classmethod
    def _amqp_urls(cls, value: str) -> str:
        node_urls(value)
        return value

    # Access (docs/security.md). Each API process reads a key at most once per this many
    # seconds: a revoked key stops working everywhere within it.
    api_key_cache_s: float = Field(default=3.0, ge=0, le=60)
    # Per-key budget: requests per fixed window, unless the key has its own (create-api-key).
    rate_limit_requests: int = Field(default=20_000, ge=1)
    rate_limit_window_s: int = Field(default=60, ge=1, le=3600)
    # Largest request body; a larger one answers 413 before it is read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Earlier NOTIFY_SECRET_KEY values (comma-separated) that still decrypt provider credentials
    # until `notifyctl secrets reencrypt` has rewritten them under the current key.
    previous_secret_keys: str = ""
    # Metrics: each worker process serves Prometheus metrics on this port (0: none); the API
    # serves them on its own port at /metrics. Broker queue figures are cached this long.
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    queue_stats_cache_s: float = Field(default=5.0, ge=0)
    # The tenant whose admins see figures across tenants (broker queue depths) on the
    # dashboard: the bootstrap key's tenant by default.
    operator_tenant: str = "default"

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key in _PLACEHOLDER_SECRETS:
            raise ValueError("NOTIFY_SECRET_KEY must be set to a real secret in production")
        if self.outbox_grace_s <= self.publish_timeout_s:
            raise ValueError(
                "NOTIFY_OUTBOX_GRACE_S must exceed NOTIFY_PUBLISH_TIMEOUT_S, or the sweep "
                "re-publishes records whose publish is still being confirmed"
            )
        return self

    def retry_policy(self, channel: Channel) -> RetryPolicy:
        """The channel's retry policy: the defaults, overridden per channel where set."""
        return RetryPolicy(
            max_attempts=self.retry_max_attempts_by_channel.get(channel, self.retry_max_attempts),
            base_s=self.retry_base_s,
            max_backoff_s=self.retry_max_backoff_s_by_channel.get(
                channel, self.retry_max_backoff_s
            ),
        )

    @property
    def previous_secrets(self) -> list[str]:
        """The earlier secret keys, in the order given."""
        return [k.strip() for k in self.previous_secret_keys.split(",") if k.strip()]

    @property
    def database_name(self) -> str:
        """The MongoDB database: set, else named after the prefix (test runs stay apart)."""
        if self.database:
            return self.database
        return self.prefix.replace("-", "_") if self.prefix else "notify"

    @property
    def retry_writes(self) -> bool:
        """Whether the MongoDB client retries writes (a replica set or Atlas URL)."""
        if self.mongodb_retry_writes is not None:
            return self.mongodb_retry_writes
        url = self.mongodb_url
        return "replicaSet=" in url or url.startswith("mongodb+srv://")
