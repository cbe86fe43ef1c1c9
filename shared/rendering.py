"""Template rendering in jinja2's sandbox; a missing variable is an error, never a blank."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from shared.errors import ValidationFailed

TEMPLATE_FIELDS = ("subject", "title", "body")

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=2048)
def _compile(source: str) -> Any:
    return _env.from_string(source)


def check_syntax(fields: Mapping[str, str | None]) -> None:
    """Raise ValidationFailed naming each field whose template does not parse."""
    errors = []
    for name, source in fields.items():
        if source is None:
            continue
        try:
            _env.parse(source)
        except TemplateSyntaxError as exc:
            errors.append(f"{name} is not a valid template (line {exc.lineno}: {exc.message})")
    if errors:
        raise ValidationFailed(errors)


@lru_cache(maxsize=2048)
def _variables_of(source: str) -> frozenset[str]:
    # Parsing is most of a render's cost, and a source always names the same variables.
    return frozenset(meta.find_undeclared_variables(_env.parse(source)))


def required_variables(fields: Mapping[str, str | None]) -> set[str]:
    """Top-level variable names the templates use."""
    names: set[str] = set()
    for source in fields.values():
        if source:
            names |= _variables_of(source)
    return names


def render_fields(
    fields: Mapping[str, str | None],
    variables: Mapping[str, Any],
    *,
    template_code: str,
    variables_name: str = "variables",
    owner: str | None = None,
) -> dict[str, str | None]:
    """Render every field; every missing variable is reported, by name, in one error.

    Messages name `variables_name.<variable>` and the owner (`template <code>` unless given,
    e.g. `workflow welcome step 1`).
    """
    owner = owner or f"template {template_code}"
    missing = sorted(required_variables(fields) - set(variables))
    if missing:
        raise ValidationFailed(
            [f"{variables_name}.{name} is required by {owner}" for name in missing]
        )
    rendered: dict[str, str | None] = {}
    for name, source in fields.items():
        if source is None:
            rendered[name] = None
            continue
        try:
            rendered[name] = _compile(source).render(**variables)
        except UndefinedError as exc:
            raise ValidationFailed(
                [f"{variables_name}: {owner} ({name}) needs {exc.message}"]
            ) from None
        except SecurityError as exc:
            raise ValidationFailed([f"{owner} ({name}) is unsafe: {exc}"]) from None
    return rendered
