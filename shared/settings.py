"""The one settings class; read only at entry points and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "dev-secret-key-change-me"}
DEV_SECRET_KEY = "dev-secret-key-change-me"


class Settings(BaseSettings):
    """Every setting of every process, from `NOTIFY_*` variables (and the two service URLs)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    rabbitmq_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        validation_alias="RABBITMQ_URL",
    )
    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017", validation_alias="MONGODB_URL")
    prefix: str = Field(default="notify", pattern=r"^[a-z][a-z0-9_-]{0,40}$")
    api_port: int = 8000
    api_host: str = "127.0.0.1"
    bootstrap_api_key: str | None = None
    secret_key: str = DEV_SECRET_KEY
    gateway_mode: bool = False
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

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key in _PLACEHOLDER_SECRETS:
            raise ValueError("NOTIFY_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def database_name(self) -> str:
        """The MongoDB database, named after the prefix so test runs stay apart."""
        return self.prefix.replace("-", "_")
