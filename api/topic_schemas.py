"""Request bodies of the topic RPCs (seed 000) and of `manage/list-transaction-recipients`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.schemas import NonEmpty, PageRequest, Strict, _SendBody

TOPIC_KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"
TopicKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TOPIC_KEY_PATTERN)]
MAX_TOPIC_IDS = 100  # the seed: "up to 100 subscribers per call"
MAX_EXCLUDED = 1000
ApiResult = Literal[
    "SENT",
    "DELIVERED",
    "RATE_LIMITED",
    "OPTED_OUT",
    "NO_CHANNEL",
    "INVALID_CREDENTIAL",
    "CANCELLED",
    "FAILED",
]


class _OneTopic(Strict):
    topicKey: TopicKey


class CreateTopicRequest(_OneTopic):
    """`manage/create-topic`; `name` is our extension (a label for people)."""

    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class TopicKeyRequest(_OneTopic):
    """`manage/delete-topic`."""


class TopicSubscribersRequest(_OneTopic):
    """`manage/add-subscribers-to-topic`, `manage/remove-subscribers-from-topic`."""

    subscriberIds: list[NonEmpty] = Field(min_length=1, max_length=MAX_TOPIC_IDS)


class ListTopicSubscribersRequest(PageRequest, _OneTopic):
    """`manage/list-topic-subscribers`."""


class CheckTopicSubscriptionRequest(_OneTopic):
    """`manage/check-topic-subscription`."""

    subscriberId: NonEmpty


class ListTopicsRequest(PageRequest):
    """`manage/list-topics` (our extension)."""


class SendToTopicRequest(_SendBody, _OneTopic):
    """`manage/send-to-topic`: every subscriber of the topic but `excludeUserIds`."""

    excludeUserIds: list[NonEmpty] | None = Field(default=None, max_length=MAX_EXCLUDED)


class TransactionRecipientsRequest(PageRequest):
    """`manage/list-transaction-recipients` (our extension): a transaction's recipients, a
    page at a time, optionally only those with one delivery result."""

    transactionId: NonEmpty
    result: ApiResult | None = None
