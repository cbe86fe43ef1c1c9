"""Which provider configs take which addresses (`route_targets`) and the targets of a subscriber."""

from __future__ import annotations

from shared.domain import Channel
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from workers.delivery.content import Target, targets_for
from workers.delivery.dispatch import route_targets
from workers.providers import ResolvedProvider


class _Null:
    name = "null"

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult(Outcome.DELIVERED)

    async def aclose(self) -> None:
        return None


def _provider(name: str, provider_type: str | None) -> ResolvedProvider:
    return ResolvedProvider(name=name, adapter=_Null(), provider_type=provider_type)


FCM_A, FCM_B = _provider("fcm-a", "FCM"), _provider("fcm-b", "FCM")
APNS = _provider("apns", "APNS")


def test_push_tokens_go_to_their_own_provider_type_with_failover_within_it() -> None:
    fcm_token = Target("f1", "device:a", "FCM")
    apns_token = Target("a1", "device:b", "APNS")
    fcm_token2 = Target("f2", "device:c", "FCM")
    routes = route_targets([fcm_token, apns_token, fcm_token2], [FCM_A, APNS, FCM_B])
    assert [([p.name for p in r.providers], r.targets) for r in routes] == [
        (["fcm-a", "fcm-b"], [fcm_token, fcm_token2]),
        (["apns"], [apns_token]),
    ]


def test_addresses_no_configured_provider_can_take_are_left_out() -> None:
    apns_token = Target("a1", "device:b", "APNS")
    assert route_targets([apns_token], [FCM_A]) == []
    routes = route_targets([Target("f1", "device:a", "FCM"), apns_token], [FCM_A])
    assert [r.targets for r in routes] == [[Target("f1", "device:a", "FCM")]]


def test_untyped_addresses_take_every_provider_and_the_sandbox_takes_any() -> None:
    email = Target("a@x.io", "a@x.io")
    sendgrid, ses = _provider("SENDGRID", "SENDGRID"), _provider("SES", "SES")
    [route] = route_targets([email], [sendgrid, ses])
    assert [p.name for p in route.providers] == ["SENDGRID", "SES"]
    sandbox = _provider("SANDBOX", None)
    [route] = route_targets([Target("a1", "device:b", "APNS")], [sandbox])
    assert route.providers == [sandbox]


def test_targets_name_the_provider_type_of_each_address() -> None:
    subscriber = {
        "subscriber_id": "u1",
        "email": "a@x.io",
        "devices": [
            {"token": "f1", "device_id": "pixel"},  # registered before APNs existed: FCM
            {"token": "a1", "device_id": "iphone", "provider": "APNS"},
        ],
        "chat": {
            "slack_webhook_url": "https://hooks.slack.com/services/T/B/x",
            "slack_channel_id": None,
            "discord_webhook_url": "https://discord.com/api/webhooks/1/t",
        },
    }
    assert targets_for(Channel.PUSH, subscriber) == [
        Target("f1", "device:pixel", "FCM"),
        Target("a1", "device:iphone", "APNS"),
    ]
    assert targets_for(Channel.CHAT, subscriber) == [
        Target("https://hooks.slack.com/services/T/B/x", "slack_webhook_url", "SLACK"),
        Target("https://discord.com/api/webhooks/1/t", "discord_webhook_url", "DISCORD"),
    ]
    assert targets_for(Channel.EMAIL, subscriber) == [Target("a@x.io", "a@x.io")]
    assert targets_for(Channel.CHAT, {"subscriber_id": "u2"}) == []
