"""What a provider module declares about itself: a `ProviderSpec`, and the helpers it relies on.

Each adapter module ends with one `SPEC = ProviderSpec(...)`; `shared.providers.registry` lists
those specs. The spec's credential model is the single source of the rules (and, through
`credential_errors`, of the messages) that both `manage/configure-provider` and the worker apply,
so a config the API accepted is exactly a config the adapter can use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, Provider, ProviderConfig

__all__ = [
    "MASK",
    "AdapterFactory",
    "AdapterResources",
    "CredentialModel",
    "InvalidCredentials",
    "ProviderSpec",
    "RequiredText",
    "UnusableProvider",
    "credential_errors",
    "http_adapter",
]

MASK = "********"  # what a secret credential reads as; says nothing about its length

# A text credential that must be present and not blank; surrounding whitespace is dropped
# because a pasted key often carries a trailing newline.
RequiredText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_REQUIRED_KINDS = frozenset({"missing", "string_too_short"})


class CredentialModel(BaseModel):
    """Base of every provider's credential model: no coercion, no unknown fields, immutable."""

    # extra="forbid": a misspelt field name ("apikey") is refused at configure time instead of
    # being stored and then missing at send time.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


CredentialsT = TypeVar("CredentialsT", bound=CredentialModel)
CredentialsT_contra = TypeVar("CredentialsT_contra", bound=CredentialModel, contravariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterResources:
    """What a worker builds once and shares with every adapter it makes."""

    http: httpx.AsyncClient
    timeout_s: float


class AdapterFactory(Protocol[CredentialsT_contra]):
    """Builds one adapter from a stored config whose credentials already validated."""

    def __call__(
        self,
        *,
        config: ProviderConfig,
        credentials: CredentialsT_contra,
        resources: AdapterResources,
    ) -> Provider:
        """The adapter for `config`."""
        ...


class HttpAdapter(Protocol[CredentialsT_contra]):
    """An adapter class built from credentials, the endpoint and the worker's shared client."""

    def __call__(
        self,
        *,
        credentials: CredentialsT_contra,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> Provider:
        """The adapter."""
        ...


def http_adapter(adapter: HttpAdapter[CredentialsT]) -> AdapterFactory[CredentialsT]:
    """The factory of an adapter that calls its provider over the worker's shared HTTP client."""

    def build(
        *, config: ProviderConfig, credentials: CredentialsT, resources: AdapterResources
    ) -> Provider:
        return adapter(
            credentials=credentials,
            endpoint=config.endpoint,
            http=resources.http,
            timeout_s=resources.timeout_s,
        )

    return build


class InvalidCredentials(ValueError):
    """Credentials that do not satisfy a provider's credential model, one message per problem."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def _describe(kind: str, msg: str, ctx: Mapping[str, Any]) -> str:
    if kind == "string_type":
        return "must be a string"
    if kind == "bool_type":
        return "must be a boolean"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be an object"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "extra_forbidden":
        return "is not a known credential field"
    if kind == "value_error":
        # A validator's own words, written to follow the field name ("must be …").
        return str(ctx.get("error", msg))
    return msg[:1].lower() + msg[1:]


def credential_errors(exc: ValidationError, *, provider_type: str) -> list[str]:
    """One client-facing message per problem, each naming its field (`credentials.apiKey …`)."""
    messages: dict[str, None] = {}  # ordered, without repeats
    # Messages never quote the input: credentials are secrets, and errors end up in logs.
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        kind = str(error["type"])
        ctx = error.get("ctx") or {}
        top = "credentials." + (loc[0] if loc else "")
        # null is how JSON clients leave a field out.
        required = kind in _REQUIRED_KINDS or error.get("input", "") is None
        if len(loc) <= 1 and required:
            text = f"{top} is required for {provider_type}"
        elif len(loc) == 2 and required:
            # A key missing inside a document-valued credential (a service-account JSON).
            text = f"{top} lacks {loc[1]}"
        else:
            path = ".".join(["credentials", *loc])
            text = f"{path} {_describe(kind, str(error['msg']), ctx)}"
        messages.setdefault(text, None)
    return list(messages)


class UnusableProvider:
    """Stands in for an adapter that cannot be built: every send reports why, as PROVIDER_AUTH.

    A stored config can stop validating (written by an older version, or for a provider this
    build has no adapter for); reporting that per send makes it an outcome operators see on the
    attempt and lets the circuit move traffic to a fallback, instead of a worker crash.
    """

    def __init__(self, *, name: str, reason: str, detail: str) -> None:
        self.name = name
        self._result = DeliveryResult(outcome=Outcome.PROVIDER_AUTH, reason=reason, detail=detail)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """The same refusal for every message; nothing leaves the process."""
        return self._result

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec(Generic[CredentialsT]):
    """Everything the API and the worker need to know about one provider type."""

    provider_type: ProviderType
    # Every channel the provider can deliver on (one for a direct provider; Novu serves all).
    channels: frozenset[Channel]
    credentials_model: type[CredentialsT]
    # Credential fields (as clients spell them) never shown back; every other field is shown.
    secret_fields: frozenset[str]
    factory: AdapterFactory[CredentialsT]
    # The channels one config serves, from its credentials (Novu: those it has a workflow
    # for); None: all of `channels`.
    configured_channels: Callable[[CredentialsT], frozenset[Channel]] | None = None
    # True for a route that takes the whole subscriber once per notification (Novu reaches
    # the subscriber's devices itself), instead of one call per address.
    per_subscriber: bool = False

    def channels_of(self, credentials: CredentialsT) -> frozenset[Channel]:
        """The channels a config with these (valid) credentials serves."""
        if self.configured_channels is None:
            return self.channels
        return self.configured_channels(credentials) & self.channels

    @property
    def credential_fields(self) -> tuple[str, ...]:
        """Every credential field as clients spell it, in declaration order."""
        fields = self.credentials_model.model_fields
        return tuple(info.alias or name for name, info in fields.items())

    def parse_credentials(self, raw: Mapping[str, Any]) -> CredentialsT:
        """The typed credentials; `InvalidCredentials` naming each bad field otherwise."""
        try:
            return self.credentials_model.model_validate(raw)
        except ValidationError as exc:
            messages = credential_errors(exc, provider_type=self.provider_type.value)
            raise InvalidCredentials(messages) from None

    def build(self, *, config: ProviderConfig, resources: AdapterResources) -> Provider:
        """The adapter for a stored config; an `UnusableProvider` when its credentials fail."""
        try:
            credentials = self.parse_credentials(config.credentials)
        except InvalidCredentials as exc:
            return UnusableProvider(
                name=self.provider_type.value, reason="invalid_credentials", detail=str(exc)
            )
        return self.factory(config=config, credentials=credentials, resources=resources)

    def mask(self, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """Stored credentials fit to show: secrets and any field the model does not know masked."""
        shown = set(self.credential_fields) - self.secret_fields
        return {
            name: value if name in shown else MASK for name, value in sorted(credentials.items())
        }
