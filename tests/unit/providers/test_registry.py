"""The provider registry: every spec round-trips valid credentials and names each invalid field."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.domain import Channel, ProviderType
from shared.providers.base import OutboundMessage, Outcome, ProviderConfig
from shared.providers.registry import (
    SPECS,
    build_adapter,
    mask_credentials,
    spec_for,
    supported_types,
)
from shared.providers.spec import (
    MASK,
    AdapterResources,
    InvalidCredentials,
    ProviderSpec,
    UnusableProvider,
)


def _service_account() -> dict[str, str]:
    # A real key, so google-auth can load it; nothing here ever asks the token endpoint.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sender@demo-project.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:9/token",
    }


_SERVICE_ACCOUNT = _service_account()  # RSA generation is slow: once per module
_P8 = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)

# One valid credential set per registered provider, every field filled in; a provider
# registered without an entry here fails `test_every_registered_provider_has_a_sample`.
VALID: dict[str, dict[str, Any]] = {
    "FCM": {"serviceAccountJson": json.dumps(_SERVICE_ACCOUNT)},
    "SENDGRID": {
        "apiKey": "SG.secret-key",
        "fromEmail": "noreply@acme.test",
        "fromName": "Acme",
        "webhookPublicKey": base64.b64encode(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
    },
    "APNS": {
        "keyId": "ABC123DEFG",
        "teamId": "TEAM123456",
        "privateKey": _P8,
        "bundleId": "com.acme.app",
        "production": False,
    },
    "SES": {
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": "secret/access/key",
        "region": "eu-west-1",
        "fromEmail": "noreply@acme.test",
        "fromName": "Acme",
        "configurationSet": "receipts",
    },
    "TWILIO": {
        "accountSid": "AC" + "1" * 32,
        "authToken": "twilio-auth-token",
        "fromNumber": "+15005550006",
        "messagingServiceSid": "MG" + "2" * 32,
        "statusCallbackUrl": "https://notify.acme.test/webhooks/twilio?tenant=tnt_1",
    },
    "SLACK": {"botToken": "xoxb-secret"},
    "DISCORD": {},
    "NOVU": {
        "apiKey": "nv-secret",
        "workflowIds": {"PUSH": "push-wf", "IN_APP": "inbox-wf"},
        "applicationIdentifier": "app-1",
        "wsUrl": "wss://ws.novu.internal",
    },
}

_SPECS = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.provider_type.value)


@pytest.fixture
async def resources() -> AsyncIterator[AdapterResources]:
    """What a worker would share with the adapters."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield AdapterResources(http=http, timeout_s=1.0)


def _config(provider_type: str, credentials: dict[str, Any]) -> ProviderConfig:
    return ProviderConfig(tenant_id="tnt_1", provider_type=provider_type, credentials=credentials)


def _errors(provider_type: str, credentials: dict[str, Any]) -> list[str]:
    spec = spec_for(provider_type)
    assert spec is not None
    with pytest.raises(InvalidCredentials) as caught:
        spec.parse_credentials(credentials)
    return caught.value.messages


def _message() -> OutboundMessage:
    return OutboundMessage(
        notification_id="ntf_1", tenant_id="tnt_1", channel=Channel.EMAIL, to="a@b.co", body="x"
    )


def test_every_registered_provider_has_a_sample() -> None:
    assert set(VALID) == set(supported_types())


def test_registered_types_are_accepted_types_each_once() -> None:
    types = [spec.provider_type for spec in SPECS]
    assert len(types) == len(set(types))
    assert all(isinstance(t, ProviderType) for t in types)
    assert set(types) == set(ProviderType)  # seed 000's seven and NOVU, each with an adapter
    assert spec_for("PIGEON") is None


@_SPECS
def test_spec_serves_the_channels_of_its_type(spec: ProviderSpec[Any]) -> None:
    assert spec.channels == spec.provider_type.channels
    if len(spec.channels) == 1:
        assert spec.provider_type.channel in spec.channels
    else:
        with pytest.raises(ValueError, match="several channels"):
            _ = spec.provider_type.channel
    # What one config serves is always among what the type can serve.
    parsed = spec.parse_credentials(VALID[spec.provider_type.value])
    assert spec.channels_of(parsed) <= spec.channels


def test_a_novu_config_serves_the_channels_it_has_workflows_for() -> None:
    spec = spec_for("NOVU")
    assert spec is not None
    assert spec.per_subscriber
    parsed = spec.parse_credentials(VALID["NOVU"])
    assert spec.channels_of(parsed) == {Channel.PUSH, Channel.IN_APP}
    assert _errors("NOVU", {"apiKey": "k", "workflowIds": {}}) == [
        "credentials.workflowIds must name a workflow for at least one channel"
    ]
    assert _errors("NOVU", {"apiKey": "k", "workflowIds": {"FAX": "wf", "PUSH": " "}}) == [
        "credentials.workflowIds has FAX, not a channel (CHAT, EMAIL, IN_APP, PUSH, SMS)"
    ]


@_SPECS
def test_secret_fields_are_credential_fields(spec: ProviderSpec[Any]) -> None:
    # Every provider with credentials has a secret among them (Discord's webhooks carry theirs).
    assert bool(spec.secret_fields) == bool(spec.credential_fields)
    assert spec.secret_fields <= set(spec.credential_fields)


@_SPECS
def test_valid_credentials_round_trip(spec: ProviderSpec[Any]) -> None:
    raw = VALID[spec.provider_type.value]
    parsed = spec.parse_credentials(raw)
    # What the model gives back is itself valid and means the same.
    dumped = parsed.model_dump(by_alias=True, exclude_none=True)
    assert set(dumped) == set(raw)
    assert spec.parse_credentials(dumped) == parsed


@_SPECS
def test_secrets_stay_out_of_repr_and_the_masked_view(spec: ProviderSpec[Any]) -> None:
    raw = VALID[spec.provider_type.value]
    parsed = spec.parse_credentials(raw)
    masked = mask_credentials(provider_type=spec.provider_type.value, credentials=raw)
    assert set(masked) == set(raw)
    for name in spec.secret_fields:
        assert masked[name] == MASK
        secret = raw[name] if isinstance(raw[name], str) else json.dumps(raw[name])
        assert secret not in repr(parsed)
    for name in set(raw) - spec.secret_fields:
        assert masked[name] == raw[name]


@_SPECS
async def test_valid_credentials_build_the_real_adapter(
    spec: ProviderSpec[Any], resources: AdapterResources
) -> None:
    config = _config(spec.provider_type.value, VALID[spec.provider_type.value])
    adapter = build_adapter(config=config, resources=resources)
    try:
        assert not isinstance(adapter, UnusableProvider)
        assert adapter.name == spec.provider_type.value
    finally:
        await adapter.aclose()


@_SPECS
def test_each_missing_required_field_is_named(spec: ProviderSpec[Any]) -> None:
    name = spec.provider_type.value
    required = [
        info.alias or field
        for field, info in spec.credentials_model.model_fields.items()
        if info.is_required()
    ]
    if not required:  # Slack (webhooks need no token) and Discord: `{}` is valid
        spec.parse_credentials({})
        return
    assert _errors(name, {}) == [f"credentials.{f} is required for {name}" for f in required]


@_SPECS
def test_each_field_of_the_wrong_type_is_named(spec: ProviderSpec[Any]) -> None:
    name = spec.provider_type.value
    for field in spec.credential_fields:
        credentials = {**VALID[name], field: 12345}
        [message] = _errors(name, credentials)
        assert message.startswith(f"credentials.{field} "), message
        assert "12345" not in message  # inputs are never quoted back


@_SPECS
def test_unknown_fields_are_named(spec: ProviderSpec[Any]) -> None:
    name = spec.provider_type.value
    credentials = {**VALID[name], "apikey": "typo"}
    assert _errors(name, credentials) == ["credentials.apikey is not a known credential field"]


def test_sendgrid_messages() -> None:
    assert _errors("SENDGRID", {"apiKey": "  "}) == [
        "credentials.apiKey is required for SENDGRID",
        "credentials.fromEmail is required for SENDGRID",
    ]
    assert _errors("SENDGRID", {"apiKey": None, "fromEmail": "nobody", "fromName": 3}) == [
        "credentials.apiKey is required for SENDGRID",
        "credentials.fromEmail must be an e-mail address",
        "credentials.fromName must be a string",
    ]


def test_sendgrid_values_are_trimmed() -> None:
    spec = spec_for("SENDGRID")
    assert spec is not None
    parsed = spec.parse_credentials({"apiKey": " SG.k\n", "fromEmail": " a@b.co "})
    assert (parsed.api_key, parsed.from_email, parsed.from_name) == ("SG.k", "a@b.co", None)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{not json", ["credentials.serviceAccountJson must be a service-account JSON document"]),
        ("[1, 2]", ["credentials.serviceAccountJson must be a service-account JSON document"]),
        (" ", ["credentials.serviceAccountJson is required for FCM"]),
        (
            {"type": "authorized_user", "client_email": "a@b", "private_key": "k"},
            [
                "credentials.serviceAccountJson.type must be 'service_account'",
                "credentials.serviceAccountJson lacks project_id",
            ],
        ),
        (
            {"project_id": ""},
            [
                "credentials.serviceAccountJson lacks project_id",
                "credentials.serviceAccountJson lacks client_email",
                "credentials.serviceAccountJson lacks private_key",
            ],
        ),
    ],
)
def test_fcm_document_messages(document: Any, expected: list[str]) -> None:
    assert _errors("FCM", {"serviceAccountJson": document}) == expected


def test_fcm_unreadable_key_is_refused_without_echoing_it() -> None:
    broken = {**_SERVICE_ACCOUNT, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}
    [message] = _errors("FCM", {"serviceAccountJson": broken})
    assert message.startswith("credentials.serviceAccountJson is not a usable service account")
    assert "AAAA" not in message


def test_fcm_accepts_the_document_as_an_object() -> None:
    spec = spec_for("FCM")
    assert spec is not None
    parsed = spec.parse_credentials({"serviceAccountJson": _SERVICE_ACCOUNT})
    assert parsed.service_account.project_id == "demo-project"


async def test_stored_config_that_no_longer_validates_reports_each_send(
    resources: AdapterResources,
) -> None:
    adapter = build_adapter(config=_config("SENDGRID", {"apiKey": "k"}), resources=resources)
    result = await adapter.send(_message())
    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "invalid_credentials"
    assert result.detail == "credentials.fromEmail is required for SENDGRID"


async def test_unregistered_type_reports_each_send(resources: AdapterResources) -> None:
    adapter = build_adapter(config=_config("PIGEON", {}), resources=resources)
    result = await adapter.send(_message())
    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "unsupported_provider"
    assert result.detail == (
        "no adapter for PIGEON (supported: FCM, APNS, SENDGRID, SES, TWILIO, SLACK, DISCORD, NOVU)"
    )


def test_unregistered_type_masks_every_field() -> None:
    masked = mask_credentials(provider_type="PIGEON", credentials={"teamId": "T", "key": "k"})
    assert masked == {"key": MASK, "teamId": MASK}


@pytest.mark.parametrize(
    ("provider_type", "credentials", "expected"),
    [
        (
            "APNS",
            {"keyId": "K", "teamId": "T", "privateKey": "not a key", "bundleId": "b"},
            ["credentials.privateKey must be the .p8 private key (PEM) Apple issued"],
        ),
        (
            "APNS",
            {"keyId": "K", "teamId": "T", "privateKey": _P8, "bundleId": "b", "production": "yes"},
            ["credentials.production must be a boolean"],
        ),
        (
            "SES",
            {
                "accessKeyId": "A",
                "secretAccessKey": "s",
                "region": "Mars",
                "fromEmail": "nobody",
            },
            [
                "credentials.region must be an AWS region such as us-east-1",
                "credentials.fromEmail must be an e-mail address",
            ],
        ),
        (
            "TWILIO",
            {"accountSid": "AC1", "authToken": "t"},
            ["credentials must include fromNumber or messagingServiceSid"],
        ),
        (
            "TWILIO",
            {
                "accountSid": "XX1",
                "authToken": "t",
                "fromNumber": "555",
                "messagingServiceSid": "Z",
            },
            [
                "credentials.accountSid must be an account SID (AC…)",
                "credentials.fromNumber must be an E.164 phone number such as +14155550100",
                "credentials.messagingServiceSid must be a messaging service SID (MG…)",
            ],
        ),
        (
            "DISCORD",
            {"webhookUrl": "x"},
            ["credentials.webhookUrl is not a known credential field"],
        ),
    ],
)
def test_provider_specific_messages(
    provider_type: str, credentials: dict[str, Any], expected: list[str]
) -> None:
    assert _errors(provider_type, credentials) == expected


def test_apns_key_must_be_p256() -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    credentials = {**VALID["APNS"], "privateKey": rsa_pem}
    assert _errors("APNS", credentials) == [
        "credentials.privateKey must be an ES256 (P-256) key as Apple issues for APNs"
    ]
