"""Issue 24 §8: what the HTML templates must hold, pinned (mutmut cannot mutate a .j2 file,
so these rules are asserted over the files and the code that renders them):

- every Jinja environment in the app escapes by default (``autoescape=True``, nothing
  computed that could turn it off for some file names);
- no template marks a value safe (``|safe``), turns escaping off (``{% autoescape false
  %}``), and no app code builds ``Markup`` to slip a value past the escaping;
- every page template (all but the e-mail's, which mail clients render without a policy)
  carries the one Content-Security-Policy pinned in tests/test_csp_browser.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from test_csp_browser import CSP_META, POLICY

from shared.alerts.templating import environment

SHARED = Path(__file__).resolve().parent.parent / "shared"
TEMPLATES = sorted(SHARED.rglob("*.j2"))
PAGES = [path for path in TEMPLATES if "email" not in path.name]
SOURCES = sorted(SHARED.rglob("*.py"))


def test_there_are_templates_to_check() -> None:
    names = {path.name for path in TEMPLATES}
    assert {"fleet.html.j2", "alert_email.html.j2"} <= names
    assert PAGES and all(path.name != "alert_email.html.j2" for path in PAGES)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_no_template_marks_a_value_safe_or_turns_escaping_off(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"\|\s*safe\b", text)
    assert not re.search(r"{%-?\s*autoescape\s+false", text, re.IGNORECASE)
    assert "Markup" not in text


@pytest.mark.parametrize("template", PAGES, ids=lambda path: path.name)
def test_every_page_template_carries_the_pinned_policy(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    assert CSP_META.findall(text) == [POLICY]
    # In <head>, before anything a browser could load or run.
    head = text.split("</head>", 1)[0]
    assert head.index("Content-Security-Policy") < min(
        (head.index(tag) for tag in ("<style", "<link", "<script") if tag in head),
        default=len(head),
    )


def _environment_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "Environment")
            or (isinstance(node.func, ast.Name) and node.func.id == "Environment")
        )
    ]


def test_every_jinja_environment_escapes_by_default() -> None:
    calls = {
        f"{path.relative_to(SHARED)}:{call.lineno}": call
        for path in SOURCES
        for call in _environment_calls(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert calls  # the app renders HTML through at least one
    for where, call in calls.items():
        autoescape = [k.value for k in call.keywords if k.arg == "autoescape"]
        assert len(autoescape) == 1, f"{where}: autoescape not set"
        value = autoescape[0]
        assert isinstance(value, ast.Constant) and value.value is True, f"{where}: not True"


def test_no_app_code_marks_a_value_safe() -> None:
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        assert "Markup(" not in text and "markupsafe" not in text, path
        assert "autoescape=False" not in text.replace(" ", ""), path


def test_the_environment_escapes_what_it_renders() -> None:
    env = environment()
    assert env.autoescape is True
    hostile = "<script>x</script>\"'&"
    rendered = env.from_string("<p title='{{ v }}'>{{ v }}</p>").render(v=hostile)
    assert "<script>" not in rendered
    assert "&lt;script&gt;x&lt;/script&gt;&#34;&#39;&amp;" in rendered
