"""Settings: default.toml < the INVENTORY_CONFIG file < INVENTORY_* variables < overrides.

A mistake must stop Vigie at start-up with a message naming the setting.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inventory.errors import ConfigError
from inventory.settings import DEFAULT_CONFIG, dump_settings, load_settings, secret_key

LONG_SECRET = "k" * 32


def config_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "vigie.toml"
    path.write_text(text, encoding="utf-8")
    return {"INVENTORY_CONFIG": str(path)}


def config_error(overrides=None, environ=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides, environ=environ or {})
    return str(caught.value)


# --- layers ---------------------------------------------------------------------------------


def test_defaults_are_safe(tmp_path):
    settings = load_settings(environ={})
    assert settings.web.host == "127.0.0.1" and settings.web.port == 8080
    assert settings.general.environment == "development"
    assert settings.web.secure_cookies is False and settings.web.secret_key == ""
    assert settings.auth.max_failed_logins == 5 and settings.auth.min_password_length >= 10
    assert settings.assets.default_interval_critical == "24h"


def test_default_toml_documents_every_setting():
    """default.toml and the models agree: each setting is in the file, with a comment above it."""
    import tomllib

    from inventory.settings import Settings

    document = tomllib.loads(DEFAULT_CONFIG.read_text())
    model = Settings().model_dump(mode="json")
    assert {k: set(v) for k, v in document.items()} == {k: set(v) for k, v in model.items()}
    lines = DEFAULT_CONFIG.read_text().splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[index - 1]
            assert above.startswith("#") or "=" in above, f"no comment for {line!r}"


def test_database_defaults_to_sqlite_under_var_dir(tmp_path):
    settings = load_settings({"general": {"var_dir": str(tmp_path / "state")}}, environ={})
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'inventory.db'}"


def test_file_overrides_defaults(tmp_path):
    environ = config_file(tmp_path, "[web]\nport = 9000\n\n[auth]\nthrottle_minutes = 30\n")
    settings = load_settings(environ=environ)
    assert settings.web.port == 9000 and settings.auth.throttle_minutes == 30
    assert settings.web.host == "127.0.0.1"  # untouched keys keep their default


def test_environment_overrides_file(tmp_path):
    environ = config_file(tmp_path, '[web]\nport = 9000\nhost = "0.0.0.0"\n')
    environ |= {
        "INVENTORY_WEB_PORT": "9100",
        "INVENTORY_WEB_SECURE_COOKIES": "true",
        "INVENTORY_WEB_LANGUAGES": "fr, en",
        "INVENTORY_DATABASE_URL": "postgresql+psycopg://vigie:p%40ss@db.local:5432/vigie",
        "INVENTORY_DATABASE_SQLITE_BUSY_TIMEOUT_MS": "250",
        "INVENTORY_WEB_SECRET_KEY": "12345678901234567890123456789012",
        "INVENTORY_GENERAL_VAR_DIR": str(tmp_path / "v"),
    }
    settings = load_settings(environ=environ)
    assert settings.web.port == 9100
    assert settings.web.host == "0.0.0.0"  # from the file
    assert settings.web.secure_cookies is True
    assert settings.web.languages == ["fr", "en"]
    assert settings.database_url == "postgresql+psycopg://vigie:p%40ss@db.local:5432/vigie"
    assert settings.database.sqlite_busy_timeout_ms == 250
    assert settings.web.secret_key == "12345678901234567890123456789012"  # digits stay text
    assert settings.var_dir == (tmp_path / "v").resolve()


def test_overrides_win_over_environment():
    settings = load_settings({"web": {"port": 9200}}, environ={"INVENTORY_WEB_PORT": "9100"})
    assert settings.web.port == 9200


def test_process_environment_is_read_by_default(monkeypatch):
    monkeypatch.setenv("INVENTORY_WEB_PAGE_SIZE", "25")
    assert load_settings().web.page_size == 25


def test_unrelated_variables_are_ignored():
    settings = load_settings(
        environ={"INVENTORY_ADMIN_PASSWORD": "x", "HOME": "/root", "INVENTORY_WEB": "1"}
    )
    assert settings.web.port == 8080


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"INVENTORY_WEB_PORT": "http"}, "web.port"),
        ({"INVENTORY_WEB_PORT": "70000"}, "web.port"),
        ({"INVENTORY_WEB_PORT": "80.5"}, "web.port"),
        ({"INVENTORY_WEB_PAGE_SIZE": "0"}, "web.page_size"),
        ({"INVENTORY_WEB_SECURE_COOKIES": "perhaps"}, "web.secure_cookies"),
        ({"INVENTORY_GENERAL_ENVIRONMENT": "prod"}, "general.environment"),
        ({"INVENTORY_AUTH_MIN_PASSWORD_LENGTH": "4"}, "auth.min_password_length"),
        ({"INVENTORY_AUTH_MAX_FAILED_LOGINS": "0"}, "auth.max_failed_logins"),
        ({"INVENTORY_DATABASE_SQLITE_BUSY_TIMEOUT_MS": "-1"}, "database.sqlite_busy_timeout_ms"),
        ({"INVENTORY_ASSETS_DEFAULT_INTERVAL_HIGH": "3 days"}, "assets.default_interval_high"),
        ({"INVENTORY_ASSETS_DEFAULT_INTERVAL_LOW": "5m"}, "assets.default_interval_low"),
        ({"INVENTORY_GENERAL_TIMEZONE": "Europe/Pariss"}, "general.timezone"),
        ({"INVENTORY_GENERAL_TIMEZONE": "../../etc/passwd"}, "general.timezone"),
        ({"INVENTORY_DATABASE_URL": "postgres://vigie@db/vigie"}, "database.url"),
        ({"INVENTORY_DATABASE_URL": "var/inventory.db"}, "database.url"),
    ],
)
def test_bad_value_names_the_setting(environ, setting):
    assert setting in config_error(environ=environ)


def test_bad_database_url_message_does_not_repeat_the_password():
    message = config_error(environ={"INVENTORY_DATABASE_URL": "mysql://vigie:hunter2@db/vigie"})
    assert "database.url" in message and "hunter2" not in message


def test_good_time_zone_accepted():
    settings = load_settings({"general": {"timezone": "Europe/Paris"}}, environ={})
    assert settings.general.timezone == "Europe/Paris"


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    assert "web.prot" in config_error(environ=config_file(tmp_path, "[web]\nprot = 9000\n"))
    assert "webb" in config_error(environ=config_file(tmp_path, "[webb]\nport = 9000\n"))


def test_missing_or_broken_file(tmp_path):
    message = config_error(environ={"INVENTORY_CONFIG": str(tmp_path / "nope.toml")})
    assert "not found" in message and "nope.toml" in message
    message = config_error(environ=config_file(tmp_path, "[web\nport = 1\n"))
    assert "not valid TOML" in message and "vigie.toml" in message


@pytest.mark.parametrize("placeholder", ["change-me", "CHANGEME", "secret", "dev"])
@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_placeholder_secrets_refused(placeholder, environment):
    message = config_error(
        {"general": {"environment": environment}, "web": {"secret_key": placeholder}}
    )
    assert "web.secret_key" in message and "placeholder" in message


def test_production_requires_a_long_secret():
    message = config_error({"general": {"environment": "production"}})
    assert "web.secret_key" in message and "INVENTORY_WEB_SECRET_KEY" in message
    assert "web.secret_key" in config_error(
        {"general": {"environment": "production"}, "web": {"secret_key": "k" * 31}}
    )
    settings = load_settings(
        environ={
            "INVENTORY_GENERAL_ENVIRONMENT": "production",
            "INVENTORY_WEB_SECRET_KEY": LONG_SECRET,
        }
    )
    assert settings.web.secret_key == LONG_SECRET


# --- the secret and the dump ----------------------------------------------------------------


def test_development_secret_is_generated_once_and_private(tmp_path):
    settings = load_settings({"general": {"var_dir": str(tmp_path / "var")}}, environ={})
    first = secret_key(settings)
    assert len(first) >= 32
    assert secret_key(settings) == first
    path = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_secret_is_used_as_is(tmp_path):
    settings = load_settings(
        {"general": {"var_dir": str(tmp_path)}, "web": {"secret_key": LONG_SECRET}}, environ={}
    )
    assert secret_key(settings) == LONG_SECRET
    assert not (tmp_path / "secret_key").exists()


def test_dump_masks_the_secret():
    dumped = dump_settings(load_settings({"web": {"secret_key": LONG_SECRET}}, environ={}))
    assert LONG_SECRET not in dumped and '"secret_key": "***"' in dumped
