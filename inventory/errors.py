"""One exception tree for Vigie, so callers catch what they mean.

    InventoryError
    ├── ConfigError            settings that cannot be used
    ├── NotFound               an asset, user, ... that does not exist
    ├── PermissionDenied       the actor's role does not allow the action
    ├── InvalidInput           bad user input; carries per-field messages
    │   ├── ImportRejected     a CSV/JSON import with bad rows (nothing was written)
    │   └── Conflict           valid on its own, but clashes with stored data
    └── LoginThrottled         too many failed logins; try later

Messages are English msgids marked with `N_` so the web layer translates them and the CLI can
print them as they are.
"""

from __future__ import annotations

from typing import Any

from inventory.i18n import N_


class InventoryError(Exception):
    """Root of every error Vigie raises on purpose."""

    def __init__(self, message: str = "", **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


class ConfigError(InventoryError):
    pass


class NotFound(InventoryError):
    pass


class PermissionDenied(InventoryError):
    pass


class InvalidInput(InventoryError):
    """Bad input; `fields` maps a field name to its messages (msgid, params) pairs."""

    def __init__(
        self,
        message: str = "",
        *,
        fields: dict[str, list[tuple[str, dict[str, Any]]]] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message, **params)
        self.fields = fields or {}


class Conflict(InvalidInput):
    pass


class ImportRejected(InvalidInput):
    """An import with bad rows; `rows` lists (line, field, msgid, params) for every problem."""

    def __init__(self, rows: list[Any], message: str = "") -> None:
        super().__init__(message or N_("The file has errors; nothing was imported."))
        self.rows = rows


class LoginThrottled(InventoryError):
    pass
