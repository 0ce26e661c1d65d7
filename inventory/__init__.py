"""Vigie: inventory and re-audit of a healthcare organisation's IT systems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from inventory.settings import Settings


def create_app(
    config: dict[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> Flask:
    """Assemble the web application: settings, extensions, blueprints. Nothing else.

    `config` holds setting overrides in the shape of config/default.toml (tests pass theirs).
    """
    from flask import Flask

    from inventory import db
    from inventory.settings import load_settings
    from inventory.web import init_web

    settings = settings or load_settings(config)
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.extensions["inventory.settings"] = settings
    db.init_app(app, engine or db.engine_from_settings(settings))
    init_web(app, settings)
    return app
