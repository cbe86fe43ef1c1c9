"""Request bodies of the inbox RPCs (seed 000, camelCase)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.schemas import ApiCategory, FeedId, Strict

MessageId = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
MarkStatus = Literal["SEEN", "READ", "UNSEEN", "UNREAD"]
FeedIds = Annotated[list[FeedId], Field(min_length=1, max_length=20)]


class InboxFeedRequest(Strict):
    """`get-inbox-feed`: newest first; `feedIds` / `categories` narrow it."""

    page: int = Field(default=1, ge=1, le=100_000)
    pageSize: int = Field(default=20, ge=1, le=100)
    feedIds: FeedIds | None = None
    categories: Annotated[list[ApiCategory], Field(min_length=1, max_length=4)] | None = None


class MarkInboxMessageRequest(Strict):
    """`mark-inbox-message`."""

    messageId: MessageId
    status: MarkStatus


class MarkAllInboxMessagesRequest(Strict):
    """`mark-all-inbox-messages`: every message (of these feeds) not yet in that status."""

    status: MarkStatus
    feedIds: FeedIds | None = None


class DeleteInboxMessageRequest(Strict):
    """`delete-inbox-message`."""

    messageId: MessageId
