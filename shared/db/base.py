"""Helpers every repository uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]


def utcnow() -> datetime:
    """Now, timezone-aware, truncated to milliseconds as BSON stores it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Repo:
    """A repository owns one collection: its name and its indexes."""

    collection_name: str = ""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.col: AsyncCollection[Doc] = db[self.collection_name]

    async def ensure_indexes(self) -> None:
        """Create this collection's indexes."""
