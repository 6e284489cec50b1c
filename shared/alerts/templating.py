"""The HTML templates of the pure core (the alert e-mail here, the fleet report in
``shared/report/templates``): Jinja2 with
autoescaping always on, so every value from a certificate, a blob name or a listing is
escaped unless a template marks it safe (none does).

Pure apart from reading the packaged templates on first use; the environment is built
lazily so that importing the core reads no file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).with_name("templates")


def _format(moment: datetime | None, fmt: str) -> str:
    if moment is None:
        return "unknown"
    return moment.astimezone(UTC).strftime(fmt)


def day(moment: datetime | None) -> str:
    return _format(moment, "%Y-%m-%d")


def minute(moment: datetime | None) -> str:
    return _format(moment, "%Y-%m-%d %H:%M")


@cache
def environment(directory: Path = TEMPLATES_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        # A path next to the calling module: works from a checkout, a wheel and the
        # Functions deployment alike (the templates ship as package data).
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the tests, not silently
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(day=day, minute=minute)
    return env


def render_html(template: str, /, **context: Any) -> str:
    """Render one template of ``templates/`` with its values escaped."""
    return environment().get_template(template).render(**context)


def render_html_in(directory: Path, template: str, /, **context: Any) -> str:
    """Render one template of another package's ``directory``, escaped the same way."""
    return environment(directory).get_template(template).render(**context)
