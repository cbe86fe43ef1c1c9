"""What a fault test counts, jepsen-style, and the one table `scripts/faults` prints.

Every request a test makes has a key (its label, e.g. the mail's subject); the provider's
accepted deliveries are counted per key. Then, as the RabbitMQ Jepsen tests count them:

- acknowledged: the API answered 200 (the request is the system's responsibility);
- delivered: requests the provider accepted at least once;
- lost: acknowledged, never delivered (must be 0);
- recovered: not acknowledged (503, no answer) yet delivered;
- unexpected: deliveries of a key no request had;
- duplicated: requests delivered more than once.

`python -m tests.faults.report FILE` prints the table from the JSON a run wrote
(`FAULT_REPORT_JSON`, see conftest.py).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

COLUMNS = (
    "requests",
    "acknowledged",
    "delivered",
    "lost",
    "recovered",
    "unexpected",
    "duplicated",
)
REPORT_ENV = "FAULT_REPORT_JSON"
NONE = "\N{EN DASH}"  # a column the test does not count


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts of one fault test, and the keys behind the ones that must stay empty."""

    requests: int
    acknowledged: int
    delivered: int
    lost: int
    recovered: int
    unexpected: int
    duplicated: int
    lost_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    duplicated_keys: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, int]:
        """The table's columns."""
        return {name: value for name, value in asdict(self).items() if name in COLUMNS}


def tally(
    *, acknowledged: Iterable[str], unacknowledged: Iterable[str], deliveries: Counter[str]
) -> Tally:
    """Count what happened to every request, from its key and the provider's deliveries."""
    acked, unacked = set(acknowledged), set(unacknowledged)
    if acked & unacked:
        raise ValueError(f"keys both acknowledged and not: {sorted(acked & unacked)[:5]}")
    sent = acked | unacked
    delivered = {key for key in sent if deliveries[key] > 0}
    lost = sorted(acked - delivered)
    unexpected = sorted(key for key in deliveries if key not in sent and deliveries[key] > 0)
    duplicated = sorted(key for key in sent if deliveries[key] > 1)
    return Tally(
        requests=len(sent),
        acknowledged=len(acked),
        delivered=len(delivered),
        lost=len(lost),
        recovered=len(delivered & unacked),
        unexpected=len(unexpected),
        duplicated=len(duplicated),
        lost_keys=lost,
        unexpected_keys=unexpected,
        duplicated_keys=duplicated,
    )


def render_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table: fault, the counts (a dash where a test has none), the outcome."""
    header = ["fault", *COLUMNS, "result"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *["---:"] * len(COLUMNS), "---"]) + "|",
    ]
    for row in rows:
        counts = row.get("columns", {})
        cells = [str(row.get("fault", row.get("test", "?")))]
        cells += [str(counts[name]) if name in counts else NONE for name in COLUMNS]
        cells.append(str(row.get("outcome", "?")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table of a run's JSON report (and each test's extra counts below it)."""
    rows: list[dict[str, Any]] = orjson.loads(Path(argv[1]).read_bytes())
    print(render_table(rows))
    extras = [row for row in rows if row.get("extra") or row.get("reason")]
    if extras:
        print()
    for row in extras:
        detail = " ".join(f"{k}={v}" for k, v in row.get("extra", {}).items())
        reason = f" ({row['reason']})" if row.get("reason") else ""
        print(f"- {row.get('fault', row.get('test'))}{reason}: {detail}".rstrip(": "))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
