"""Response shapes of the workflow, promotion, activity and statistics RPCs (camelCase)."""

from __future__ import annotations

from typing import Any

from api.presenters import delivery_status_view
from shared.db.base import Doc
from shared.db.notifications.stats import Stats
from shared.domain import Channel, Status
from shared.records import NotificationRecord
from shared.timefmt import iso_z as iso
from shared.workflow_model import WorkflowDefinition

_PREFERENCE_NAMES = {
    Channel.EMAIL: "email",
    Channel.PUSH: "push",
    Channel.IN_APP: "inApp",
    Channel.SMS: "sms",
    Channel.CHAT: "chat",
}


def workflow_view(doc: Doc) -> dict[str, Any]:
    """One workflow version as seed 000 writes a workflow, plus ids, version and times."""
    definition = WorkflowDefinition.model_validate(doc)
    return {
        "workflowId": doc["workflow_id"],
        "key": doc["key"],
        "version": doc["version"],
        "environment": doc["environment"],
        "name": definition.name,
        "description": definition.description,
        "active": definition.active,
        "critical": definition.critical,
        "category": definition.category,
        "tags": definition.tags,
        "steps": [
            {
                "channel": step.channel.api_name,
                "title": step.title,
                "subject": step.subject,
                "body": step.body,
                "data": step.data,
                "deepLink": step.deep_link,
                "imageUrl": step.image_url,
                "delaySeconds": step.delay_seconds,
                "skipIfRead": step.skip_if_read,
            }
            for step in definition.steps
        ],
        "preferenceSettings": {
            name: definition.channel_on_by_default(channel)
            for channel, name in _PREFERENCE_NAMES.items()
        },
        "createdAt": iso(doc.get("first_created_at") or doc.get("created_at")),
        "updatedAt": iso(doc.get("created_at")),
    }


def change_view(doc: Doc, *, entity_type: str) -> dict[str, Any]:
    """A pending (or promoted) change: the development version an edit stored."""
    is_workflow = entity_type == "workflow"
    view: dict[str, Any] = {
        "changeId": doc["change_id"],
        "entityType": entity_type,
        "entityId": doc["workflow_id"] if is_workflow else doc["template_code"],
        "key": doc["key"] if is_workflow else doc["template_code"],
        "action": doc.get("change_action"),
        "version": doc["version"],
        "changedAt": iso(doc.get("created_at")),
        "changedBy": doc.get("changed_by"),
        "promoted": not doc.get("pending"),
    }
    if not is_workflow:
        view["locale"] = doc.get("locale")
    return view


def workflow_status_view(records: list[NotificationRecord]) -> dict[str, Any]:
    """`manage/get-delivery-status` of a workflow trigger: the seed's fields, then one entry
    per step with each recipient's notification.

    `result` is SENT while any step is in flight; then DELIVERED if every recipient got at
    least one step delivered (skipped escalations are the point of a workflow, not a
    failure); otherwise the one result all share, or FAILED.
    """
    view = delivery_status_view(records)
    for extra in ("summary", "recipients", "attempts", "failureReason"):
        view.pop(extra, None)
    first = records[0]
    assert first.workflow is not None
    view["workflowId"] = first.workflow.workflow_id
    view["workflowKey"] = first.workflow.key
    view["workflowVersion"] = first.workflow.version
    view["result"] = _overall(records)
    steps: dict[int, list[NotificationRecord]] = {}
    for record in records:
        if record.workflow is not None:
            steps.setdefault(record.workflow.step, []).append(record)
    view["steps"] = [_step_view(index, rows) for index, rows in sorted(steps.items())]
    return view


def _overall(records: list[NotificationRecord]) -> str:
    if any(not r.status.is_final for r in records):
        return "SENT"
    delivered = {r.recipient for r in records if r.status.result == "DELIVERED"}
    if delivered == {r.recipient for r in records}:
        return "DELIVERED"
    results = {r.status.result for r in records}
    return results.pop() if len(results) == 1 else "FAILED"


def _step_view(index: int, records: list[NotificationRecord]) -> dict[str, Any]:
    summary: dict[str, int] = {}
    for r in records:
        summary[r.status.result] = summary.get(r.status.result, 0) + 1
    return {
        "step": index,
        "channel": records[0].channel.api_name,
        "summary": summary,
        "notifications": [
            {
                "userId": r.recipient,
                "notificationId": r.id,
                "result": r.status.result,
                "providerMessageId": r.provider_message_id,
                "failureReason": r.failure_reason,
                "deliverAt": iso(r.deliver_at),
                "deliveredAt": iso(r.delivered_at),
            }
            for r in records
        ],
    }


def activity_view(doc: Doc) -> dict[str, Any]:
    """One row of `manage/get-notification-activity`."""
    workflow = doc.get("workflow") or {}
    return {
        "notificationId": doc["_id"],
        "transactionId": doc.get("transaction_id"),
        "userId": doc.get("recipient"),
        "channel": Channel(doc["channel"]).api_name,
        "category": doc.get("category"),
        "result": Status(doc["status"]).result,
        "provider": doc.get("provider"),
        "failureReason": doc.get("failure_reason"),
        "createdAt": iso(doc.get("created_at")),
        "deliveredAt": iso(doc.get("delivered_at")),
        "workflowId": workflow.get("workflow_id"),
        "environment": doc.get("environment") or "development",
    }


def stats_view(stats: Stats) -> dict[str, Any]:
    """`manage/get-notification-stats`: seed 002's counts, then every day of the period."""
    by_day: dict[str, dict[str, dict[str, int]]] = {d: {} for d in stats.days}
    totals = dict.fromkeys(stats.days, 0)
    for cell in stats.daily:
        channel = Channel(cell.channel).api_name
        by_day[cell.day].setdefault(channel, {})[cell.result] = cell.count
        totals[cell.day] += cell.count
    return {
        "weeklySent": stats.weekly,
        "monthlySent": stats.monthly,
        "yearlySent": stats.yearly,
        "days": len(stats.days),
        "daily": [{"date": d, "total": totals[d], "channels": by_day[d]} for d in stats.days],
    }
