"""Novu as a delivery route: `POST /v1/events/trigger` (and `/bulk`) on a Novu instance.

A tenant's NOVU config names a workflow per channel; each notification on such a channel
triggers that workflow for the subscriber (Novu upserts the subscriber from `to`), with our
notification id as `transactionId`, so Novu itself drops a retry of a trigger it already took.
Concurrent sends of one config go out together as one bulk trigger (up to 100 events, each
judged on its own); a lone send is a plain trigger.

Answers, as Novu's v1 API gives them (seed 002; `shared/providers/novu_api.py` reads them):
- 201 `{"data": {"acknowledged", "status", "transactionId", "error"}}`: only `status:
  "processed"` is delivered; any other status (`trigger_not_active`, `invalid_recipients`,
  `no_workflow_steps_defined`, …, or one Novu adds later) is a permanent failure naming it;
- 401/403 our API key: `provider_auth`; 400/404/413/422: permanent; 429: rate limited
  (`Retry-After`); 408/5xx: retry; 409 (an idempotency conflict): retry with the same key.

novu-py is not used: its default retry keeps trying for an hour (DESIGN.md §8), and the calls
are a few JSON POSTs over the worker's shared client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import Field, field_validator

from shared.db.batching import Coalescer
from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.providers.http import classify_transport_error
from shared.providers.novu_api import (
    BULK_PATH,
    TRIGGER_PATH,
    base_url,
    classify_error,
    envelope,
    headers,
    judge_event,
    subscriber_payload,
)
from shared.providers.spec import CredentialModel, ProviderSpec, RequiredText, http_adapter

MAX_BULK = 100  # Novu: "The bulk API is limited to 100 events per request."
# A send of a multi-recipient request waits this long for its siblings, so a send-bulk leaves
# as one bulk trigger (or a few, on a loaded machine) rather than one request per recipient.
BULK_LINGER_S = 0.05


class NovuCredentials(CredentialModel):
    """`{apiKey, workflowIds: {<CHANNEL>: <workflow id>}, applicationIdentifier?, wsUrl?}`."""

    api_key: RequiredText = Field(alias="apiKey", repr=False)
    workflow_ids: dict[str, str] = Field(alias="workflowIds")
    # Needed only for the inbox session (an IN_APP route through Novu).
    application_identifier: str | None = Field(default=None, alias="applicationIdentifier")
    # The socket server inbox clients connect to; derived for Novu Cloud, needed when
    # self-hosted on another host.
    ws_url: str | None = Field(default=None, alias="wsUrl")

    @field_validator("workflow_ids")
    @classmethod
    def _workflows(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("must name a workflow for at least one channel")
        known = {c.api_name for c in Channel}
        for channel, workflow in value.items():
            if channel not in known:
                raise ValueError(f"has {channel}, not a channel ({', '.join(sorted(known))})")
            if not workflow.strip():
                raise ValueError(f"names no workflow for {channel}")
        return {channel: workflow.strip() for channel, workflow in value.items()}

    def workflow_for(self, channel: Channel) -> str | None:
        """The workflow this config triggers for `channel`."""
        return self.workflow_ids.get(channel.api_name)


def _channels(credentials: NovuCredentials) -> frozenset[Channel]:
    return frozenset(Channel.from_api(name) for name in credentials.workflow_ids)


def trigger_event(message: OutboundMessage, *, workflow: str) -> dict[str, Any]:
    """One trigger (or bulk element): the workflow, the subscriber, the rendered content."""
    payload: dict[str, Any] = {"body": message.body, "channel": message.channel.api_name}
    for key, value in (
        ("title", message.title),
        ("subject", message.subject),
        ("deepLink", message.deep_link),
        ("imageUrl", message.image_url),
        ("category", message.category),
        ("feedId", message.feed_id),
    ):
        if value is not None:
            payload[key] = value
    if message.data:
        payload["data"] = dict(message.data)
    return {
        "name": workflow,
        "to": subscriber_payload(
            message.subscriber or {}, subscriber_id=message.recipient_id or message.to
        ),
        "payload": payload,
        "transactionId": message.notification_id,
    }


class NovuProvider:
    """Triggers a tenant's Novu workflows; concurrent sends share one bulk request."""

    name = "NOVU"

    def __init__(
        self,
        *,
        credentials: NovuCredentials,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        self._base = base_url(endpoint)
        self._headers = headers(credentials.api_key)
        self._now: Coalescer[None, dict[str, Any], DeliveryResult] = Coalescer(
            self._trigger_batch, max_batch=MAX_BULK
        )
        self._bulk: Coalescer[None, dict[str, Any], DeliveryResult] = Coalescer(
            self._trigger_bulk, max_batch=MAX_BULK, linger_s=BULK_LINGER_S
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Trigger the channel's workflow for the subscriber; never raises for Novu's answers."""
        workflow = self._credentials.workflow_for(message.channel)
        if workflow is None:
            return DeliveryResult(
                outcome=Outcome.PERMANENT,
                reason="no_workflow",
                detail=f"the NOVU config names no workflow for {message.channel.api_name}",
            )
        event = trigger_event(message, workflow=workflow)
        return await (self._bulk if message.in_bulk else self._now).submit(None, event)

    async def _trigger_batch(
        self, _: None, events: list[dict[str, Any]]
    ) -> list[DeliveryResult | BaseException]:
        if len(events) == 1:
            return [await self._trigger_one(events[0])]
        return list(await self._trigger_many(events))

    async def _trigger_bulk(
        self, _: None, events: list[dict[str, Any]]
    ) -> list[DeliveryResult | BaseException]:
        # A bulk's recipients go through the bulk endpoint even when one arrives alone.
        return list(await self._trigger_many(events))

    async def _trigger_one(self, event: dict[str, Any]) -> DeliveryResult:
        try:
            response = await self._http.post(
                self._base + TRIGGER_PATH,
                json=event,
                # Novu answers a repeated key with the first answer (or 409 while in flight).
                headers={**self._headers, "idempotency-key": event["transactionId"]},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        if response.status_code != 201:
            return classify_error(response)
        data = envelope(response)
        return judge_event(data if isinstance(data, Mapping) else None, event["transactionId"])

    async def _trigger_many(self, events: list[dict[str, Any]]) -> list[DeliveryResult]:
        try:
            response = await self._http.post(
                self._base + BULK_PATH,
                json={"events": events},
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return [classify_transport_error(exc)] * len(events)
        if response.status_code != 201:
            return [classify_error(response)] * len(events)
        data = envelope(response)
        answers = data if isinstance(data, list) else []
        by_id = {
            a.get("transactionId"): a
            for a in answers
            if isinstance(a, Mapping) and a.get("transactionId")
        }
        results: list[DeliveryResult] = []
        for index, event in enumerate(events):
            answer = by_id.get(event["transactionId"])
            if answer is None and index < len(answers) and isinstance(answers[index], Mapping):
                answer = answers[index]  # answers without ids come back in request order
            results.append(judge_event(answer, event["transactionId"]))
        return results

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the worker."""


SPEC = ProviderSpec(
    provider_type=ProviderType.NOVU,
    channels=frozenset(Channel),
    credentials_model=NovuCredentials,
    secret_fields=frozenset({"apiKey"}),
    factory=http_adapter(NovuProvider),
    configured_channels=_channels,
    per_subscriber=True,
)
