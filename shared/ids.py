"""Identifiers: sortable by creation time, safe in URLs."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """A 26-character time-ordered id (48-bit ms clock + 80 random bits) behind `prefix_`."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    chars = []
    for _ in range(26):
        value, rest = divmod(value, 32)
        chars.append(alphabet[rest])
    return f"{prefix}_{''.join(reversed(chars))}"
