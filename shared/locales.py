"""Which locale variant of a template a subscriber gets: pure functions, unit-tested."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def normalize(locale: str | None) -> str | None:
    """`en_gb`, `EN-GB` → `en-gb`: tags compare without regard to case or separator."""
    if not locale:
        return None
    return locale.replace("_", "-").lower()


def language_of(locale: str | None) -> str | None:
    """`en-GB` → `en`; a bare language is its own language."""
    tag = normalize(locale)
    return tag.split("-", 1)[0] if tag else None


def fallback_chain(locale: str | None, default_locale: str | None) -> list[str | None]:
    """The variants to try, in order: the subscriber's locale, its language, the tenant's
    default locale, that one's language, then the variant without a locale."""
    chain: list[str | None] = [
        normalize(locale),
        language_of(locale),
        normalize(default_locale),
        language_of(default_locale),
        None,
    ]
    return [c for i, c in enumerate(chain) if (c is not None or i == len(chain) - 1)]


def pick_variant(
    versions: Iterable[Mapping[str, Any]], *, locale: str | None, default_locale: str | None
) -> Mapping[str, Any] | None:
    """The newest version of the first variant in the fallback chain that exists; with none
    of them, the newest version of any variant (so a template stays usable)."""
    newest: dict[str | None, Mapping[str, Any]] = {}
    overall: Mapping[str, Any] | None = None
    for doc in versions:
        tag = normalize(doc.get("locale"))
        if tag not in newest or doc["version"] > newest[tag]["version"]:
            newest[tag] = doc
        if overall is None or doc["version"] > overall["version"]:
            overall = doc
    for candidate in dict.fromkeys(fallback_chain(locale, default_locale)):
        if candidate in newest:
            return newest[candidate]
    return overall


def locales_of(versions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct locale tags a template has variants in, as first written, sorted."""
    seen: dict[str, str] = {}
    for doc in versions:
        tag = doc.get("locale")
        if tag:
            seen.setdefault(str(normalize(tag)), str(tag))
    return [seen[k] for k in sorted(seen)]
