"""`GET /api/v1/notifications/{id}` answers an ETag; `If-None-Match` gets a bodiless 304 while
nothing changed, and the new state with a new tag once something did."""

from __future__ import annotations

from tests.integration.helpers import ok_rpc
from tests.integration.workflow_support import create_workflow, in_app_user, welcome
from tests.support import Tenant, wait_for


async def test_a_poller_gets_304_until_the_notification_changes(tenant: Tenant) -> None:
    await in_app_user(tenant, "u1")
    steps = [{"channel": "IN_APP", "body": "later", "delaySeconds": 2}]
    workflow = await create_workflow(tenant, welcome(steps=steps))
    triggered = await ok_rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    status = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": triggered["transactionId"]}
    )
    notification_id = status["steps"][0]["notifications"][0]["notificationId"]
    url = f"/api/v1/notifications/{notification_id}"

    first = await tenant.client.get(url)
    assert first.status_code == 200
    assert first.json()["data"]["status"] == "delayed"
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"

    unchanged = await tenant.client.get(url, headers={"If-None-Match": tag})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
    weak = await tenant.client.get(url, headers={"If-None-Match": f'"stale", W/{tag}'})
    assert weak.status_code == 304
    other = await tenant.client.get(url, headers={"If-None-Match": '"stale"'})
    assert (other.status_code, other.json()) == (200, first.json())

    async def changed() -> bool:
        response = await tenant.client.get(url, headers={"If-None-Match": tag})
        return response.status_code == 200

    await wait_for(changed, timeout_s=20, what="the notification to change")
    final = await tenant.client.get(url, headers={"If-None-Match": tag})
    assert final.headers["etag"] != tag
    assert final.json()["data"]["status"] in ("processing", "delivered")


async def test_an_unknown_notification_is_still_404(tenant: Tenant) -> None:
    response = await tenant.client.get("/api/v1/notifications/nope", headers={"If-None-Match": "*"})
    assert response.status_code == 404
    assert "etag" not in response.headers
