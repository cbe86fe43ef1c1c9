"""The providers this build can deliver through: one `ProviderSpec` per adapter module.

Adding a provider is one new module that ends with `SPEC = ProviderSpec(...)`, plus one entry
in `SPECS` below. The API validates and masks credentials through the spec, the worker builds
adapters through it; neither names a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.providers import apns, discord, fcm, novu, sendgrid, ses, slack, twilio
from shared.providers.base import Provider, ProviderConfig
from shared.providers.spec import MASK, AdapterResources, ProviderSpec, UnusableProvider

__all__ = ["SPECS", "build_adapter", "mask_credentials", "spec_for", "supported_types"]

# The registration: the only list of provider modules in the code base.
SPECS: tuple[ProviderSpec[Any], ...] = (
    fcm.SPEC,
    apns.SPEC,
    sendgrid.SPEC,
    ses.SPEC,
    twilio.SPEC,
    slack.SPEC,
    discord.SPEC,
    novu.SPEC,
)

_BY_TYPE: dict[str, ProviderSpec[Any]] = {spec.provider_type.value: spec for spec in SPECS}
if len(_BY_TYPE) != len(SPECS):
    raise RuntimeError("two provider specs register the same provider type")


def spec_for(provider_type: str) -> ProviderSpec[Any] | None:
    """The spec of a provider type, or None when this build has no adapter for it."""
    return _BY_TYPE.get(provider_type)


def supported_types() -> tuple[str, ...]:
    """Provider types with an adapter, in registration order."""
    return tuple(_BY_TYPE)


def build_adapter(*, config: ProviderConfig, resources: AdapterResources) -> Provider:
    """The adapter for a stored config; never raises for a config that cannot be used."""
    spec = spec_for(config.provider_type)
    if spec is None:
        # A config stored by a build that knew this provider (or written by hand).
        supported = ", ".join(supported_types())
        return UnusableProvider(
            name=config.provider_type,
            reason="unsupported_provider",
            detail=f"no adapter for {config.provider_type} (supported: {supported})",
        )
    return spec.build(config=config, resources=resources)


def mask_credentials(*, provider_type: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Credentials fit to show; every field is masked when the provider is not registered."""
    spec = spec_for(provider_type)
    if spec is None:
        return dict.fromkeys(sorted(credentials), MASK)
    return spec.mask(credentials)
