"""The access table: which scope each route needs (api/access.py)."""

from __future__ import annotations

import pytest

from api.access import access_for, check
from api.context import Principal
from shared.errors import Forbidden, ValidationFailed

M = "/api/v1/notifications/manage/"


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("POST", f"{M}send", {"admin", "send"}),
        ("POST", f"{M}send-bulk", {"admin", "send"}),
        ("POST", f"{M}send-to-topic", {"admin", "send"}),
        ("POST", f"{M}cancel", {"admin", "send"}),
        ("POST", f"{M}trigger-workflow", {"admin", "send"}),
        ("POST", f"{M}get-delivery-status", {"admin", "send", "read"}),
        ("POST", f"{M}get-notification-activity", {"admin", "send", "read"}),
        ("POST", f"{M}list-transaction-recipients", {"admin", "send", "read"}),
        ("POST", f"{M}list-topic-subscribers", {"admin", "read"}),
        ("POST", f"{M}list-topics", {"admin", "read"}),
        ("POST", f"{M}create-topic", {"admin"}),
        ("POST", f"{M}add-subscribers-to-topic", {"admin"}),
        ("POST", f"{M}list-subscribers", {"admin", "read"}),
        ("POST", f"{M}get-subscriber", {"admin", "read"}),
        ("POST", f"{M}check-topic-subscription", {"admin", "read"}),
        ("POST", f"{M}get-dashboard-stats", {"admin", "read"}),
        ("POST", f"{M}list-api-keys", {"admin"}),
        ("POST", f"{M}get-providers", {"admin"}),
        ("POST", f"{M}create-subscriber", {"admin"}),
        ("POST", f"{M}create-api-key", {"admin"}),
        ("POST", f"{M}replay-dead-letters", {"admin"}),
        ("POST", f"{M}some-future-rpc", {"admin"}),
        ("POST", "/api/v1/notifications", {"admin", "send"}),
        ("GET", "/api/v1/notifications/{notification_id}", {"admin", "send", "read"}),
        ("GET", "/dev/outbox", {"admin"}),
        ("GET", "/somewhere/new", {"admin"}),
    ],
)
def test_scopes_by_route(method: str, path: str, scopes: set[str]) -> None:
    access = access_for(method=method, path=path)
    assert not access.public
    assert set(access.scopes) == scopes


@pytest.mark.parametrize(
    "path", ["/health/live", "/health/ready", "/metrics", "/dashboard", "/openapi.json"]
)
def test_public_routes(path: str) -> None:
    assert access_for(method="GET", path=path).public


def test_user_rpcs_need_a_user_and_any_key() -> None:
    access = access_for(method="POST", path="/api/v1/notifications/get-inbox-feed")
    with pytest.raises(ValidationFailed):
        check(access, Principal(tenant_id="t", scopes=frozenset({"read"})))
    check(access, Principal(tenant_id="t", scopes=frozenset({"read"}), user_id="u"))


def test_a_missing_scope_is_named() -> None:
    access = access_for(method="POST", path=f"{M}list-subscribers")
    with pytest.raises(Forbidden, match="admin or read scope"):
        check(access, Principal(tenant_id="t", scopes=frozenset({"send"})))
    check(access, Principal(tenant_id="t", scopes=frozenset({"admin"})))
