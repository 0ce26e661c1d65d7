"""Reading rendered pages in tests: one element by id, a form field's error messages."""

from __future__ import annotations

import html as html_lib
import re


def element(html: str, element_id: str) -> str:
    """The source of the element with this id, nested elements of the same tag included."""
    start = html.rindex("<", 0, html.index(f'id="{element_id}"'))
    tag = re.match(r"<(\w+)", html[start:]).group(1)  # type: ignore[union-attr]
    if tag in {"input", "img", "br", "meta", "link"}:  # void elements have no closing tag
        return html[start : html.index(">", start) + 1]
    depth = 0
    for match in re.compile(rf"<(/?){tag}\b").finditer(html, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html[start : html.index(">", match.end()) + 1]
    raise AssertionError(f"unclosed element {element_id}")


def field_errors(html: str, name: str) -> str:
    """The text of the error list shown next to form field `name` ("" when there is none)."""
    found = re.search(r'<ul class="errors".*?</ul>', element(html, f"field-{name}"), re.S)
    return html_lib.unescape(found.group(0)) if found else ""
