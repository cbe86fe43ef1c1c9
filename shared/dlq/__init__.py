"""Dead-letter operations: list, show, replay and purge DLQ messages, with an audit trail.

`DeadLetters` (in `ops`) is the one implementation the API's admin RPCs and `notifyctl dlq`
both call; `browse` holds the broker technique that reads a DLQ without losing or reordering
anything; `model` the parsing and filters; `results` what operations return.
"""

from shared.dlq.model import DeadLetter, DeadLetterFilter
from shared.dlq.ops import DeadLetters
from shared.dlq.results import Detail, Listing, OperationResult, Progress, Skipped

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetters",
    "Detail",
    "Listing",
    "OperationResult",
    "Progress",
    "Skipped",
]
