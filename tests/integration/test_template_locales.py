"""Localized templates: the subscriber's locale, then its language, then the tenant's default
locale, then the variant without a locale; `list-templates` shows each code's locales."""

from __future__ import annotations

from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import configure_sendgrid, ok_rpc, rpc, wait_final_status
from tests.support import Tenant

VARIANTS = [(None, "Hello"), ("en", "Hello (en)"), ("en-GB", "Hello (en-GB)"), ("de", "Hallo")]
USERS = {
    "00000000-0000-4000-8000-000000000001": "en-GB",
    "00000000-0000-4000-8000-000000000002": "en-US",
    "00000000-0000-4000-8000-000000000003": "fr-FR",
    "00000000-0000-4000-8000-000000000004": None,
    "00000000-0000-4000-8000-000000000005": "en_gb",
}


async def _setup(tenant: Tenant, sendgrid: FakeSendGrid) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    for locale, subject in VARIANTS:
        body = {"templateCode": "greet", "channel": "EMAIL", "subject": subject, "body": "{{ n }}"}
        await ok_rpc(tenant, "manage/create-template", {**body, "locale": locale})
    for user, locale in USERS.items():
        data = {"email": f"{user[-1]}@example.com", "locale": locale}
        await ok_rpc(tenant, "manage/create-subscriber", {"userId": user, "subscriberData": data})


async def _subjects(tenant: Tenant, sendgrid: FakeSendGrid, tag: str) -> dict[str, str]:
    """Send `greet` to every user (seed 003); the subject each one received."""
    sendgrid.reset()
    for user in USERS:
        response = await tenant.client.post(
            "/api/v1/notifications",
            json={
                "notification_type": "email",
                "user_id": user,
                "template_code": "greet",
                "variables": {"n": 1},
                "request_id": f"{tag}-{user}",
            },
        )
        assert response.status_code == 200, response.text
        assert (await wait_final_status(tenant, f"{tag}-{user}"))["result"] == "DELIVERED"
    return {user: sendgrid.mails_to(f"{user[-1]}@example.com")[0]["subject"] for user in USERS}


async def test_the_variant_falls_back_from_locale_to_language_to_default_to_none(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _setup(tenant, sendgrid)
    users = list(USERS)

    without_default = await _subjects(tenant, sendgrid, "a")
    assert without_default == {
        users[0]: "Hello (en-GB)",  # its own locale
        users[1]: "Hello (en)",  # en-US: no variant, its language has one
        users[2]: "Hello",  # fr-FR: nothing French, no tenant default: no-locale variant
        users[3]: "Hello",  # no locale at all
        users[4]: "Hello (en-GB)",  # en_gb: tags compare without case or separator
    }

    settings = await ok_rpc(tenant, "manage/update-tenant-settings", {"defaultLocale": "de-AT"})
    assert settings == {"defaultLocale": "de-AT"}
    with_default = await _subjects(tenant, sendgrid, "b")
    assert with_default[users[2]] == "Hallo"  # de-AT has no variant; its language de has
    assert with_default[users[3]] == "Hallo"
    assert with_default[users[1]] == "Hello (en)"  # the subscriber's own language comes first

    cleared = await ok_rpc(tenant, "manage/update-tenant-settings", {"defaultLocale": None})
    assert cleared == await ok_rpc(tenant, "manage/get-tenant-settings", {})
    assert cleared == {"defaultLocale": None}


async def test_a_newer_version_of_a_variant_wins_and_others_keep_theirs(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _setup(tenant, sendgrid)
    await ok_rpc(
        tenant,
        "manage/create-template",
        {
            "templateCode": "greet",
            "channel": "EMAIL",
            "subject": "Hi (en)",
            "body": "x",
            "locale": "en",
        },
    )
    subjects = await _subjects(tenant, sendgrid, "c")
    users = list(USERS)
    assert (subjects[users[1]], subjects[users[0]], subjects[users[3]]) == (
        "Hi (en)",
        "Hello (en-GB)",
        "Hello",
    )


async def test_list_templates_shows_the_locales_of_each_code(tenant: Tenant) -> None:
    for code, locale in (("greet", None), ("greet", "en-GB"), ("greet", "de"), ("bye", None)):
        await ok_rpc(
            tenant,
            "manage/create-template",
            {"templateCode": code, "channel": "PUSH", "body": "x", "locale": locale},
        )
    listed = (await ok_rpc(tenant, "manage/list-templates", {}))["templates"]
    assert [(t["templateCode"], t["version"], t["locales"]) for t in listed] == [
        ("bye", 1, []),
        ("greet", 3, ["de", "en-GB"]),
    ]


async def test_a_bad_default_locale_is_refused(tenant: Tenant) -> None:
    response = await rpc(tenant, "manage/update-tenant-settings", {"defaultLocale": "english!"})
    assert response.status_code == 400
    assert response.json()["error"] == ["defaultLocale must be a locale tag such as en-US"]
    assert await ok_rpc(tenant, "manage/get-tenant-settings", {}) == {"defaultLocale": None}
