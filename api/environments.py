"""The environment rule of the API: definitions are edited in development only."""

from __future__ import annotations

from api.context import Principal
from shared.domain import Environment
from shared.errors import Forbidden


def require_development(principal: Principal, *, what: str) -> None:
    """Refuse an edit of `what` (workflows, templates) with a key acting in production."""
    if principal.environment != Environment.DEVELOPMENT.value:
        raise Forbidden(
            f"{what} are edited in development and reach {principal.environment} by promotion "
            f"(manage/promote-change): this API key acts in {principal.environment}"
        )
