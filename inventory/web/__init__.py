"""The web layer: extensions (login, CSRF, translations), security headers, blueprints."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, g, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from inventory.settings import Settings, secret_key

if TYPE_CHECKING:
    from inventory.models import User

csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()

LANGUAGE_NAMES = {"en": "English", "fr": "Français"}


def _select_locale() -> str:
    settings: Settings = g.get("settings") or _settings()
    languages = settings.web.languages
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages) or settings.web.default_language


def _select_timezone() -> str | None:
    return _settings().general.timezone or _local_timezone()


def _local_timezone() -> str:
    try:
        from pathlib import Path

        link = Path("/etc/localtime").resolve()
        if "zoneinfo/" in str(link):
            return str(link).split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def _settings() -> Settings:
    from flask import current_app

    return current_app.extensions["inventory.settings"]  # type: ignore[no-any-return]


def _load_user(session_id: str) -> User | None:
    from inventory.db import get_session
    from inventory.services.users import load_session_user

    return load_session_user(session=get_session(), session_id=session_id)


def _security_headers(response: Any) -> Any:
    # No CDN, no inline script: everything is served by Vigie itself.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class _StaticFilesKeepCookies(SecureCookieSessionInterface):
    """Stylesheets and icons never set the session cookie. Each response refreshes the cookie
    it was asked with, and the browser keeps the last one it receives: an icon asked for just
    before "Log out" and answered just after put the logged-out session back (seen in a
    browser test)."""

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if request.endpoint == "static":
            return False
        return super().should_set_cookie(app, session)


def init_web(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="vigie_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.web.session_minutes),
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
        MAX_CONTENT_LENGTH=settings.web.max_upload_mb * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (expiring) session
        BABEL_DEFAULT_LOCALE=settings.web.default_language,
        BABEL_TRANSLATION_DIRECTORIES=str(app.root_path + "/translations"),
        TEMPLATES_AUTO_RELOAD=settings.general.environment == "development",
    )
    if settings.web.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.session_interface = _StaticFilesKeepCookies()
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=_select_timezone)
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # type: ignore[assignment]
    login_manager.session_protection = "basic"
    app.after_request(_security_headers)

    from inventory.api.views import bp as api_bp
    from inventory.web import filters
    from inventory.web.account.views import bp as account_bp
    from inventory.web.admin.views import bp as admin_bp
    from inventory.web.assets.views import bp as assets_bp
    from inventory.web.auth.views import bp as auth_bp
    from inventory.web.errors import register_error_handlers
    from inventory.web.feeds.views import bp as feeds_bp
    from inventory.web.findings.views import bp as findings_bp
    from inventory.web.reports.views import bp as reports_bp
    from inventory.web.schedule.views import bp as schedule_bp

    filters.register(app)
    register_error_handlers(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(assets_bp)
    app.register_blueprint(findings_bp)
    app.register_blueprint(schedule_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(account_bp)
    csrf.exempt(api_bp)  # token-authenticated, no cookies: CSRF does not apply
    app.register_blueprint(api_bp)

    @app.before_request
    def _session_is_permanent() -> None:
        if not session.permanent:  # setting it again would mark the session changed
            session.permanent = True  # so PERMANENT_SESSION_LIFETIME applies

    from flask_login import login_required

    @app.get("/")
    @login_required
    def index() -> Any:
        from flask import redirect, url_for

        return redirect(url_for("assets.list_assets"))

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    app.jinja_env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
