"""The French interface is complete: every message in the code has a translation, and pages use it.

1. The catalogue is extracted from the current source (the same command as `make catalog`) and
   every message must have a non-empty, non-fuzzy French translation in messages.po.
2. Every translation keeps exactly the %(name)s placeholders of its msgid, and formats.
3. The .po is compiled and the main pages are rendered for a French user: `<html lang="fr">`, no
   English message from the catalogue left in the visible text, and the domain parsers' validation
   errors shown in French next to their field.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from inventory.services import assets as asset_service
from inventory.services.users import update_user
from tests.factories import PASSWORD, make_asset, make_user

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "inventory" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGrsa]")
# The same without its group, for re.split (which would return the group too).
BETWEEN_PLACEHOLDERS = re.compile(PLACEHOLDER.pattern.replace("(\\w+)", "\\w+"))
MIN_LENGTH = 12  # shorter msgids ("Site", "Zone", "Actions") may legitimately read the same
# Longer messages that read the same in French (technical tokens); any other copy is untranslated.
SAME_IN_FRENCH = {"Public (Internet)"}

# Words that appear in English sentences but not in French ones: a hard-coded English string that
# was never marked for translation (and so is not in the catalogue) still shows up through these.
ENGLISH_WORDS = re.compile(
    r"\b(the|your|you|this|that|these|with|and|are|is|was|were|been|has|have|of|for|to|from"
    r"|please|cannot|can't|don't|must|should|will|which|what|when|where|who|here|there)\b",
    re.IGNORECASE,
)


# --- the catalogue ----------------------------------------------------------------------------


def _ids(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, (tuple, list)) else [message.id]


def _strings(message: Message) -> list[str]:
    string = message.string
    return list(string) if isinstance(string, (tuple, list)) else [string or ""]


def _placeholders(texts: Iterable[str]) -> set[str]:
    return {match.group(0) for text in texts for match in PLACEHOLDER.finditer(text)}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The messages of the current source, extracted exactly as `make catalog` does."""
    pot = tmp_path_factory.mktemp("catalog") / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "--quiet",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-k",
            "_l",
            "-o",
            str(pot),
            "--no-location",
            str(ROOT),
        ]
    )
    with pot.open("rb") as handle:
        catalog = read_po(handle)
    assert len([m for m in catalog if m.id]) > 100, "extraction found almost nothing: babel.cfg?"
    return catalog


@pytest.fixture(scope="module")
def french() -> Catalog:
    with PO_FILE.open("rb") as handle:
        return read_po(handle, locale="fr")


def test_every_extracted_message_has_a_french_translation(
    extracted: Catalog, french: Catalog
) -> None:
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = french.get(message.id)
        if (
            translated is None
            or translated.fuzzy
            or _ids(translated) != _ids(message)
            or len(_strings(translated)) != (french.num_plurals if message.pluralizable else 1)
            or not all(text and text.strip() for text in _strings(translated))
            or any(
                len(text) >= MIN_LENGTH and text in _ids(message) and text not in SAME_IN_FRENCH
                for text in _strings(translated)
            )
        ):
            missing.append(" | ".join(_ids(message)))
    assert not missing, (
        f"{len(missing)} message(s) without a French translation; run `make catalog` and translate "
        "them in inventory/translations/fr/LC_MESSAGES/messages.po:\n  " + "\n  ".join(missing)
    )


def test_french_catalogue_is_clean(french: Catalog) -> None:
    assert french.plural_forms == "nplurals=2; plural=(n > 1);"
    fuzzy = [m.id for m in french if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries (check and remove the flag): {fuzzy}"
    errors = [(m.id, [str(e) for e in errs]) for m, errs in french.check()]
    assert not errors, errors


def test_translations_keep_their_placeholders(french: Catalog) -> None:
    wrong = []
    for message in french:
        if not message.id or not any(_strings(message)):
            continue
        expected = _placeholders(_ids(message))
        params = {
            m.group(1): (1 if m.group(0)[-1] in "dioxXc" else "x")
            for m in PLACEHOLDER.finditer(" ".join(_ids(message)))
        }
        for text in _strings(message):
            if _placeholders([text]) != expected:
                wrong.append(
                    f"{_ids(message)[0]!r}: {text!r} has {sorted(_placeholders([text]))}, "
                    f"expected {sorted(expected)}"
                )
            elif expected:
                try:
                    text % params
                except (KeyError, ValueError, TypeError) as exc:
                    wrong.append(f"{text!r} does not format: {exc}")
    assert not wrong, "\n".join(wrong)


# --- the pages, in French ---------------------------------------------------------------------


def _visible(page: str) -> str:
    """The text a user sees or hears: tag contents, plus placeholder/aria-label/title/alt.

    Scripts, styles and generated secrets (random text) are left out.
    """
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    page = re.sub(r'(?is)<p class="secret[^"]*"[^>]*>.*?</p>', " ", page)
    attributes = re.findall(r'(?i)\s(?:placeholder|aria-label|title|alt)="([^"]*)"', page)
    text = re.sub(r"(?s)<[^>]+>", " ", page)
    return " ".join(html.unescape(" ".join([text, *attributes])).split())


def _english_fragments(french: Catalog) -> list[str]:
    """English text of the catalogue that must not show on a French page.

    Each msgid is cut at its placeholders; pieces shorter than MIN_LENGTH, and pieces that the
    French translation itself keeps (technical tokens such as "Public (Internet)" or an example
    value), are left out.
    """
    fragments = set()
    for message in french:
        if not message.id:
            continue
        kept = " ".join(_strings(message))
        for msgid in _ids(message):
            for piece in BETWEEN_PLACEHOLDERS.split(msgid):
                piece = " ".join(piece.split()).strip(" .,:;")
                if len(piece) >= MIN_LENGTH and piece not in " ".join(kept.split()):
                    fragments.add(piece)
    return sorted(fragments, key=len, reverse=True)


def _french(french: Catalog, msgid: str, **params: Any) -> str:
    """The French text of a message as the UI shows it (checked to differ from the English)."""
    message = french.get(msgid)
    assert message is not None and message.string, f"no French for {msgid!r}"
    text = _strings(message)[0]
    text = text % params if params else text
    assert text != (msgid % params if params else msgid)
    return " ".join(text.split())


def _field_errors(page: str, field_id: str) -> str:
    match = re.search(rf'(?s)<ul class="errors" id="{re.escape(field_id)}-error">(.*?)</ul>', page)
    assert match, f"no error shown next to {field_id}"
    return _visible(match.group(1))


@pytest.fixture
def compiled_french(app: Any, french: Catalog, tmp_path: Path) -> Path:
    """Compile messages.po and make the app read it (the .mo in the tree may be stale)."""
    directory = tmp_path / "translations"
    mo_file = directory / "fr" / "LC_MESSAGES" / "messages.mo"
    mo_file.parent.mkdir(parents=True)
    with mo_file.open("wb") as handle:
        write_mo(handle, french)
    app.extensions["babel"].translation_directories = [str(directory)]
    settings = app.extensions["inventory.settings"]
    # A small page size so that the pager shows with a handful of assets.
    app.extensions["inventory.settings"] = settings.model_copy(
        update={"web": settings.web.model_copy(update={"page_size": 5})}
    )
    return mo_file


def test_main_pages_are_in_french(
    client: Any, session: Any, french: Catalog, compiled_french: Path, fast_hashing: None
) -> None:
    fragments = _english_fragments(french)
    checked: list[str] = []

    def fr_(msgid: str, **params: Any) -> str:
        return _french(french, msgid, **params)

    def check(url: str, page: str) -> str:
        assert '<html lang="fr">' in page, f"{url} is not served in French"
        text = _visible(page)
        english = [f for f in fragments if f in text]
        assert not english, f"English left on {url}: {english}"
        words = sorted({w.lower() for w in ENGLISH_WORDS.findall(text)})
        assert not words, f"English words on {url} (an unmarked string?): {words}\n{text}"
        checked.append(url)
        return page

    def get(url: str, status: int = 200, **kwargs: Any) -> str:
        response = client.get(url, **kwargs)
        assert response.status_code == status, (url, response.status_code)
        return check(url, response.get_data(as_text=True))

    def post(url: str, data: dict[str, Any], status: int, **kwargs: Any) -> str:
        response = client.submit(url, data, **kwargs)
        assert response.status_code == status, (url, response.status_code)
        return check(url, response.get_data(as_text=True))

    # A visitor whose browser prefers French.
    fr = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
    get("/login", headers=fr)
    page = post("/login", {"username": "", "password": ""}, 400, headers=fr)
    assert fr_("Enter your user name.") in _field_errors(page, "username")
    page = post("/login", {"username": "nobody", "password": "wrong password"}, 401, headers=fr)
    assert fr_("Wrong user name or password.") in _visible(page)

    # An administrator who chose French (the browser asks for English: the account wins).
    admin = make_user(session, "admin", username="alice")
    assert admin.id is not None
    update_user(session=session, user_id=admin.id, locale="fr")
    make_user(session, "viewer", username="bruno")
    assert client.login("alice", PASSWORD).status_code == 302
    get("/assets")  # the empty inventory

    pacs = make_asset(
        session,
        name="PACS radiologie",
        addresses="192.168.10.5",
        kind="pacs",
        criticality="high",
        holds_patient_data="yes",
        tags="radiologie",
        expected_services="4242/tcp dicom",
        ae_titles="PACS_RADIO",
        audit_interval="24h",
    )
    assert pacs.id is not None
    data = asset_service.asset_to_data(pacs).model_copy(
        update={"zone": "imagerie", "owner": "Dr Martin"}
    )
    asset_service.update_asset(session=session, asset_id=pacs.id, data=data, actor="alice")
    for _ in range(5):
        make_asset(session, kind="workstation")

    get("/assets")
    get("/assets?page=2&sort=criticality&dir=desc")
    get("/assets?q=introuvable")
    get("/assets?archived=1")
    get(f"/assets/{pacs.id}")
    get(f"/assets/{pacs.id}/edit")
    get(f"/assets/{pacs.id}/archive")
    get("/assets/new")

    # The domain parsers' messages, in French, next to the field they concern.
    page = post(
        "/assets/new",
        {
            "name": "",
            "kind": "pacs",
            "criticality": "high",
            "exposure": "internal",
            "addresses": "192.168.1.0/24",
            "hostnames": "pacs_ancien!",
            "mac": "zz:zz",
            "expected_services": "99999/tcp dicom",
            "ae_titles": "PACS\\RADIO",
            "software": "cpe:/a:x:y",
            "tags": "radiologie",
            "audit_interval": "bientôt",
        },
        400,
    )
    assert fr_("Some fields need correcting; see the messages below each one.") in _visible(page)
    expected = {
        "name": fr_("A name is required."),
        "addresses": fr_(
            "%(value)s is a network range, not one machine's address; list each address.",
            value="192.168.1.0/24",
        ),
        "mac": fr_(
            "%(value)s is not a MAC address (expected e.g. 00:1b:63:84:45:e6).", value="zz:zz"
        ),
        "expected_services": fr_("Port %(value)s is out of range (1 to 65535).", value="99999"),
        "ae_titles": fr_(
            "An AE title cannot contain a backslash (%(value)s).", value="PACS\\RADIO"
        ),
        "audit_interval": fr_(
            "%(value)s is not a duration; write e.g. 24h, 3d or 1w.", value="bientôt"
        ),
    }
    for field_id, message in expected.items():
        assert message in _field_errors(page, field_id), (field_id, message)
    for field_id in ("hostnames", "software"):
        _field_errors(page, field_id)

    # A clash with another asset: French message and a link to it.
    page = post(
        "/assets/new",
        {
            "name": "PACS radiologie",
            "kind": "pacs",
            "criticality": "high",
            "exposure": "internal",
            "addresses": "192.168.10.5",
        },
        400,
    )
    assert fr_(
        "%(address)s is already the address of %(name)s.",
        address="192.168.10.5",
        name="PACS radiologie",
    ) in _field_errors(page, "addresses")
    assert fr_("Another asset is already called %(name)s.", name="PACS radiologie") in (
        _field_errors(page, "name")
    )

    # Import: the form, a file with bad rows, then a good file's preview.
    get("/assets/import")
    bad = (
        b"name,addresses,kind,holds_patient_data\n"
        b"IRM,10.0.0.300,modality,yes\n"
        b"Echographe,10.1.0.1,modalite,peut-etre\n"
    )
    page = post(
        "/assets/import",
        {"file": (io.BytesIO(bad), "equipements.csv")},
        400,
        content_type="multipart/form-data",
    )
    assert fr_(
        "%(value)s is not an IP address (expected e.g. 192.168.1.20 or 2001:db8::20).",
        value="10.0.0.300",
    ) in _visible(page)
    assert fr_("Write yes or no (got %(value)s).", value="peut-etre") in _visible(page)
    good = b"name;addresses;kind\nIRM;10.2.0.1;modality\nPACS radiologie;192.168.10.5;pacs\n"
    page = post(
        "/assets/import",
        {"file": (io.BytesIO(good), "equipements.csv")},
        200,
        content_type="multipart/form-data",
    )
    assert "equipements.csv" in page

    # Users and the account page.
    get("/admin/users")
    get("/admin/users/new")
    page = post(
        "/admin/users/new",
        {"username": "x", "role": "viewer", "password": ""},
        400,
        page="/admin/users/new",
    )
    assert _field_errors(page, "username")
    get(f"/admin/users/{admin.id}")
    get("/account")
    page = post(
        "/account/password",
        {"pw-current": "", "pw-password": "court", "pw-confirm": "autre"},
        400,
        page="/account",
    )
    assert fr_("Enter your current password.") in _field_errors(page, "pw-current")
    assert fr_("The two passwords differ.") in _field_errors(page, "pw-confirm")
    get("/account/tokens")
    page = post("/account/tokens", {"name": ""}, 400, page="/account/tokens")
    assert fr_("Say what the token is for.") in _field_errors(page, "name")
    page = post("/account/tokens", {"name": "export nocturne"}, 200, page="/account/tokens")
    token_id = re.search(r"/account/tokens/(\d+)/revoke", page)
    assert token_id
    response = client.submit(f"/account/tokens/{token_id.group(1)}/revoke", page="/account/tokens")
    assert response.status_code == 302
    page = get("/account/tokens")
    assert fr_("The token was revoked; scripts using it are refused from now on.") in (
        _visible(page)
    )

    # Error pages.
    get("/assets/999999", 404)
    get("/nowhere", 404)

    assert len(checked) >= 25
