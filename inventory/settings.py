"""Settings: config/default.toml < the file named by INVENTORY_CONFIG < INVENTORY_* variables.

Environment variables are named INVENTORY_<SECTION>_<KEY> (INVENTORY_DATABASE_URL is
`[database] url`). Values are validated once, here, so a typo fails at start-up with a message
naming the setting instead of surfacing later as a strange behaviour.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from inventory.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"
PLACEHOLDER_SECRETS = {"change-me", "changeme", "secret", "dev", "development"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneralSettings(_Section):
    environment: Literal["development", "production", "test"] = "development"
    timezone: str = ""
    var_dir: Path = Path("var")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        # Checked here: an unknown zone would otherwise break every page that shows a date.
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (expected e.g. Europe/Paris or UTC)"
                ) from None
        return value


class DatabaseSettings(_Section):
    url: str = ""
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # The URL may hold a password: the message never repeats it.
        if value:
            try:
                backend = make_url(value).get_backend_name()
            except ArgumentError:
                backend = ""
            if backend not in {"sqlite", "postgresql"}:
                raise ValueError(
                    "expected sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/db"
                )
        return value


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: str = ""
    secure_cookies: bool = False
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    session_minutes: int = Field(default=480, ge=1)
    page_size: int = Field(default=50, ge=5, le=500)
    max_upload_mb: int = Field(default=50, ge=1)
    languages: list[str] = ["en", "fr"]
    default_language: str = "en"


class AuthSettings(_Section):
    max_failed_logins: int = Field(default=5, ge=1)
    throttle_minutes: int = Field(default=15, ge=1)
    min_password_length: int = Field(default=10, ge=8)


class AssetSettings(_Section):
    default_interval_critical: str = "24h"
    default_interval_high: str = "3d"
    default_interval_medium: str = "7d"
    default_interval_low: str = "7d"

    @field_validator("*")
    @classmethod
    def _interval(cls, value: str) -> str:
        from inventory.validators import FieldError, parse_interval

        try:
            parse_interval(value)
        except FieldError as exc:
            raise ValueError(exc.render()) from exc
        return value


class ZonePolicy(_Section):
    """What may be open in one network zone without being declared on each asset."""

    allowed_ports: list[int] = []
    unexpected_severity: Literal["info", "low", "medium", "high", "critical"] = "medium"

    @field_validator("allowed_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [port for port in value if not 1 <= port <= 65535]
        if bad:
            raise ValueError(f"ports out of range: {bad}")
        return value


class AuditSettings(_Section):
    scope: list[str] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    default_ports: list[int] = [
        21,
        22,
        23,
        80,
        104,
        139,
        443,
        445,
        2761,
        2762,
        3389,
        4242,
        5900,
        6379,
        8042,
        8080,
        8443,
        9200,
        11112,
        27017,
    ]
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    read_timeout: float = Field(default=3.0, gt=0, le=120)
    max_connections: int = Field(default=256, ge=1, le=10_000)
    max_connections_per_host: int = Field(default=8, ge=1, le=256)
    audit_deadline: float = Field(default=120, gt=0, le=86_400)
    max_banner_bytes: int = Field(default=2048, ge=64, le=1_048_576)
    # Zone name (as typed on assets, any case) -> its policy for `port.unexpected-open`.
    zones: dict[str, ZonePolicy] = {}

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, value: dict[str, ZonePolicy]) -> dict[str, ZonePolicy]:
        return {name.strip().lower(): policy for name, policy in value.items()}

    def zone_policy(self, zone: str) -> ZonePolicy:
        """The policy of `zone`; a zone without one allows nothing undeclared."""
        return self.zones.get(zone.strip().lower(), ZonePolicy())

    @field_validator("scope")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import netaddr

        for item in value:
            try:
                netaddr.IPNetwork(item)
            except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
                raise ValueError(f"{item!r} is not a network (e.g. 192.168.0.0/16)") from exc
        return value

    @field_validator("default_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [port for port in value if not 1 <= port <= 65535]
        if bad:
            raise ValueError(f"ports out of range: {bad}")
        return value


class SchedulerSettings(_Section):
    """Re-audits on a schedule: the dispatcher, the workers, the lease and the rate limits."""

    # Seconds between two runs of the dispatcher (finds due assets, hands them to workers).
    dispatch_interval: float = Field(default=5.0, gt=0, le=3600)
    # Due assets handed out per dispatcher run, at most.
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Audits running at once across every worker (each one opens several connections).
    max_concurrent_audits: int = Field(default=8, ge=1, le=10_000)
    # New connections opened per second by one worker process (audits start paced by it).
    max_new_connections_per_second: float = Field(default=200.0, gt=0, le=1_000_000)
    # Audits one worker process runs at once (`inventory worker --concurrency`).
    worker_concurrency: int = Field(default=4, ge=1, le=1000)
    # `inventory serve` and `inventory scheduler` also audit (false: only `inventory worker` does).
    in_process_worker: bool = True
    # Seconds a worker checks for new work when it found none.
    poll_interval: float = Field(default=1.0, gt=0, le=600)
    # One active scheduler per database: seconds its lease lasts without renewal.
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Seconds a claimed audit stays its worker's without a heartbeat (a killed worker's audits
    # are marked interrupted and due again after this).
    claim_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # New (or edited) assets: their first audit is spread over this many seconds.
    first_audit_spread: float = Field(default=60.0, ge=0, le=86_400)
    # Later audits come up to this fraction of the interval early, so that assets added together
    # drift apart.
    jitter: float = Field(default=0.05, ge=0, le=0.5)
    # After an audit that got no answer or failed, seconds until the next try (at most the
    # asset's interval).
    retry_after: float = Field(default=3600.0, gt=0, le=31_622_400)
    # Seconds between two checks for assets not audited successfully for twice their interval.
    stale_check_interval: float = Field(default=300.0, gt=0, le=86_400)
    # On SIGTERM, seconds running audits get to finish before being marked interrupted.
    shutdown_grace: float = Field(default=20.0, ge=0, le=3600)


class ReportScheduleSettings(_Section):
    """A report schedule written in the configuration file (read-only in the web UI)."""

    name: str = Field(min_length=1, max_length=100)
    # Five fields, minute hour day month weekday, e.g. "0 7 * * mon" (every Monday 07:00).
    cron: str
    # "all", or "site:NAME", "zone:NAME", "kind:KIND", "tag:TAG".
    scope: str = "all"
    formats: list[Literal["html", "pdf", "csv", "json"]] = ["pdf", "csv"]
    language: str = ""
    recipients: list[str] = []
    folder: str = ""
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from inventory.reports.cron import CronError, parse_cron

        try:
            parse_cron(value)
        except CronError as exc:
            raise ValueError(exc.render()) from exc
        return value


class ReportSettings(_Section):
    """Re-audit reports: their language, and how they are sent (SMTP) or written (folder)."""

    # Language of reports whose schedule names none (one of [web] languages).
    language: str = "en"
    # SMTP server for e-mailed reports; empty: no e-mail.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # STARTTLS on a plain connection (port 587); smtp_ssl: TLS from the start (port 465).
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    # A CA bundle to trust for the SMTP server's certificate (empty: the system's).
    smtp_cafile: str = ""
    smtp_user: str = ""
    # Set it in the environment (INVENTORY_REPORTS_SMTP_PASSWORD), not in a file.
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: float = Field(default=30.0, gt=0, le=600)
    mail_from: str = "vigie@localhost"
    # Reports are written under this folder (a sub-folder per schedule); empty: <var_dir>/reports.
    folder: str = ""
    # Largest attachment, in megabytes: bigger files are compressed (zip), then linked.
    max_attachment_mb: float = Field(default=10.0, gt=0, le=1000)
    # Vigie's address as readers reach it, for links in e-mails (e.g. https://vigie.clinic.lan).
    public_url: str = ""
    # Failed deliveries are retried after retry_seconds, doubling each time, max_attempts in all.
    retry_seconds: float = Field(default=300.0, gt=0, le=86_400)
    max_attempts: int = Field(default=6, ge=1, le=50)
    # Seconds between two looks for due report schedules and deliveries to retry.
    check_interval: float = Field(default=60.0, gt=0, le=3600)
    schedules: list[ReportScheduleSettings] = []


class VulnSettings(_Section):
    """Known vulnerabilities: matching detected software, and `inventory feeds update`."""

    # Detected software (CPE candidates) with at least this confidence (0 to 1) is matched
    # without a confirmation; above 1: only confirmed software is.
    auto_confirm_confidence: float = Field(default=0.9, ge=0, le=1.01)
    # Also match products NVD files under another vendor name (offis/dicom dcmtk, f5/nginx...).
    vendor_aliases: bool = True
    # Largest feed file the upload page accepts, in MB (bigger: `inventory feeds import`).
    max_upload_mb: int = Field(default=500, ge=1, le=100_000)
    # `inventory feeds update` only (needs Internet access; nothing else does):
    nvd_url: str = "https://services.nvd.nist.gov/rest/json/cves/2.0"
    kev_url: str = (
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
    )
    # NVD API key (raises the rate limit); set it in the environment (INVENTORY_VULNS_NVD_API_KEY).
    nvd_api_key: SecretStr = SecretStr("")
    # Seconds between two NVD requests: the NVD allows 5 requests per 30 s without a key, 50 with.
    nvd_delay_without_key: float = Field(default=6.0, ge=0, le=600)
    nvd_delay_with_key: float = Field(default=0.6, ge=0, le=600)
    # Records per NVD request (the API's maximum is 2000).
    nvd_page_size: int = Field(default=2000, ge=1, le=2000)
    # Seconds one download may take; retries of a refused or failed request (with back-off).
    download_timeout: float = Field(default=60.0, gt=0, le=3600)
    download_retries: int = Field(default=5, ge=0, le=20)

    @field_validator("nvd_url", "kev_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s):// URL")
        return value


class Settings(_Section):
    general: GeneralSettings = GeneralSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    auth: AuthSettings = AuthSettings()
    assets: AssetSettings = AssetSettings()
    audit: AuditSettings = AuditSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    reports: ReportSettings = ReportSettings()
    vulns: VulnSettings = VulnSettings()

    @property
    def var_dir(self) -> Path:
        return self.general.var_dir.resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.var_dir / 'inventory.db'}"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc


def _from_environment(environ: dict[str, str], sections: dict[str, Any]) -> dict[str, Any]:
    """Map INVENTORY_<SECTION>_<KEY> variables onto known sections; values parse as TOML scalars."""
    found: dict[str, Any] = {}
    for section, fields in sections.items():
        for key in fields:
            name = f"INVENTORY_{section}_{key}".upper()
            if name not in environ:
                continue
            raw = environ[name]
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw
            if isinstance(fields[key], str) and not isinstance(value, str):
                value = raw
            if isinstance(fields[key], list) and isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            elif isinstance(fields[key], list) and not isinstance(value, list):
                value = [value]  # one port, e.g. INVENTORY_AUDIT_DEFAULT_PORTS=4242
            found.setdefault(section, {})[key] = value
    return found


def load_settings(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build the settings from the three layers, plus `overrides` (tests pass theirs here)."""
    environ = dict(os.environ if environ is None else environ)
    data = _read_toml(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else {}
    defaults = Settings().model_dump(mode="json")
    if environ.get("INVENTORY_CONFIG"):
        data = _merge(data, _read_toml(Path(environ["INVENTORY_CONFIG"])))
    data = _merge(data, _from_environment(environ, defaults))
    data = _merge(data, overrides or {})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    _check_secret(settings)
    return settings


def _check_secret(settings: Settings) -> None:
    key = settings.web.secret_key
    if key.lower() in PLACEHOLDER_SECRETS:
        raise ConfigError("web.secret_key is a placeholder value; set a long random secret")
    if settings.general.environment == "production" and len(key) < 32:
        raise ConfigError(
            "web.secret_key must be set to at least 32 random characters in production "
            "(INVENTORY_WEB_SECRET_KEY)"
        )


def secret_key(settings: Settings) -> str:
    """The configured secret, or in development one generated once and kept under var/."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = settings.var_dir / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write aside, then link into place: of two processes starting together, one wins and
        # both read the winner's key; nobody ever reads a half-written file.
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    value = path.read_text().strip()
    if len(value) < 32:
        raise ConfigError(
            f"{path} holds no usable secret key; delete it to have a new one generated"
        )
    return value


def dump_settings(settings: Settings) -> str:
    """The effective settings as JSON with secrets masked, for `inventory config show`."""
    data = settings.model_dump(mode="json")
    if data["web"]["secret_key"]:
        data["web"]["secret_key"] = "***"
    return json.dumps(data, indent=2)
