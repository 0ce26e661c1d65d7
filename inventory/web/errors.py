"""Error pages: HTML for people, {"code", "message", "fields"} JSON for the API; never bare 500s."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from inventory.errors import InvalidInput, NotFound, PermissionDenied

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )


def _answer(status: int, code: str, message: str) -> Any:
    if _wants_json():
        return {"code": code, "message": message, "fields": {}}, status
    return render_template("errors/error.html", status=status, message=message), status


def _rollback() -> None:
    """End the request's failed transaction, so the error page itself can still read (PostgreSQL
    refuses every statement in an aborted transaction, e.g. loading the logged-in user)."""
    session = g.get("db_session")
    if session is not None:
        try:
            session.rollback()
        except Exception:  # noqa: BLE001 - the page must render whatever the database does
            log.exception("rollback after an unexpected error failed")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> Any:
        return _answer(
            400,
            "csrf",
            _(
                "This form has expired or was sent from elsewhere. "
                "Go back, reload the page and try again."
            ),
        )

    @app.errorhandler(NotFound)
    def _not_found(_exc: NotFound) -> Any:
        return _answer(404, "not_found", _("This page does not exist (or no longer does)."))

    @app.errorhandler(PermissionDenied)
    def _denied(_exc: PermissionDenied) -> Any:
        return _answer(403, "forbidden", _("Your role does not allow this. Ask an administrator."))

    @app.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Any:
        return _answer(
            400, "invalid", _(exc.message, **exc.params) if exc.message else _("Invalid input.")
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        messages = {
            400: _("The request could not be understood."),
            403: _("Your role does not allow this. Ask an administrator."),
            404: _("This page does not exist (or no longer does)."),
            405: _("This action is not available here."),
            413: _("The file is too large."),
        }
        status = exc.code or 500
        return _answer(
            status,
            str(exc.name).lower().replace(" ", "_"),
            messages.get(status, _("Something went wrong.")),
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        _rollback()
        return _answer(
            500,
            "internal",
            _("Something went wrong on our side. The error was logged; nothing was changed."),
        )
