"""Locale fallback: subscriber locale → its language → tenant default → its language → none."""

from __future__ import annotations

from typing import Any

from shared.locales import fallback_chain, language_of, locales_of, normalize, pick_variant


def _v(version: int, locale: str | None) -> dict[str, Any]:
    return {"version": version, "locale": locale}


def test_tags_compare_without_case_or_separator() -> None:
    assert normalize("en_GB") == normalize("EN-gb") == "en-gb"
    assert normalize(None) is None
    assert normalize("") is None
    assert language_of("zh-Hant-TW") == "zh"
    assert language_of("de") == "de"
    assert language_of(None) is None


def test_the_chain_dedups_and_always_ends_with_no_locale() -> None:
    assert fallback_chain("en-GB", "de-AT") == ["en-gb", "en", "de-at", "de", None]
    assert fallback_chain("en", None) == ["en", "en", None]
    assert fallback_chain(None, None) == [None]
    assert fallback_chain(None, "fr") == ["fr", "fr", None]


def test_pick_takes_the_newest_version_of_the_first_variant_present() -> None:
    versions = [_v(1, None), _v(2, "en"), _v(3, "en-GB"), _v(4, "de"), _v(5, "en")]
    assert pick_variant(versions, locale="en-GB", default_locale=None) == _v(3, "en-GB")
    assert pick_variant(versions, locale="en-US", default_locale="de") == _v(5, "en")
    assert pick_variant(versions, locale="fr-FR", default_locale="de-AT") == _v(4, "de")
    assert pick_variant(versions, locale="fr-FR", default_locale=None) == _v(1, None)
    assert pick_variant(versions, locale=None, default_locale=None) == _v(1, None)


def test_with_no_variant_in_the_chain_the_newest_of_any_serves() -> None:
    versions = [_v(1, "de"), _v(2, "fr")]
    assert pick_variant(versions, locale="en", default_locale=None) == _v(2, "fr")
    assert pick_variant([], locale="en", default_locale="de") is None


def test_locales_are_listed_once_as_first_written() -> None:
    versions = [_v(1, None), _v(2, "en-GB"), _v(3, "en_gb"), _v(4, "de")]
    assert locales_of(versions) == ["de", "en-GB"]
