"""Translation helpers usable without Flask.

Domain code marks user-facing messages with `N_` (a no-op the extractor knows); the web layer
translates them with `translate`, the CLI prints them in English. Keeping the msgid and its
parameters apart lets one message serve both.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name
    """Mark a message for extraction; translated later where a locale is known."""
    return message


def render(message: str, params: dict[str, Any] | None = None) -> str:
    """The English text of a message with its parameters filled in."""
    return message % params if params else message
