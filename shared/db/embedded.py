"""How the embedded database (SecantusDB's `secantusd-py`) is started for development, the
tests and the bench: one place, so all three run the server the same way.

- `--standalone`: the server advertises itself as a standalone, not a one-member replica set,
  and so keeps no oplog: every write costs one less write (measured: +10 to 17 % writes; see
  docs/capacity.md). Nothing here needs what the oplog gives: no change streams (the inbox's
  live updates travel through RabbitMQ, `notifications.realtime`), no transactions, and
  retryable writes are off for a non-replica-set URL (`Settings.retry_writes`).
- `--cache-size`: WiredTiger's cache. The server's default is 1G; development, test and bench
  data (≤ 100k records, ~0.1 GB with indexes) fit in 256M, and several test servers run side
  by side on a small machine. `NOTIFY_EMBEDDED_DB_CACHE` (`Settings.embedded_db_cache`)
  overrides it.

A production deployment runs a `mongod` replica set instead (docs/capacity.md).
"""

from __future__ import annotations

DEFAULT_CACHE = "256M"


def embedded_server_args(cache: str = DEFAULT_CACHE) -> list[str]:
    """Flags for `secantusd-py` besides host, port and storage path."""
    return ["--standalone", "--cache-size", cache]
