"""The asset form: plain inputs; every value is checked by the same parsers as imports and API."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

from inventory.errors import InvalidInput
from inventory.models import AssetData
from inventory.services.assets import ASSET_FIELDS, validate_asset
from inventory.web.helpers import place_errors
from inventory.web.labels import choices

LIST_FIELDS = ("addresses", "hostnames", "expected_services", "ae_titles", "software", "tags")


class AssetForm(FlaskForm):
    name = StringField(_l("Name"), description=_l("How your team calls it, e.g. PACS radiology."))
    kind = SelectField(_l("Kind"), choices=[])
    addresses = TextAreaField(
        _l("Addresses"),
        description=_l("IPv4 or IPv6 addresses of this machine, one per line (e.g. 192.168.10.5)."),
    )
    hostnames = TextAreaField(
        _l("Host names"), description=_l("One per line, e.g. pacs.clinic.local.")
    )
    mac = StringField(_l("MAC address"), description=_l("Optional, e.g. 00:1b:63:84:45:e6."))
    site = StringField(_l("Site"), description=_l("Building or location, e.g. Lyon - main clinic."))
    zone = StringField(_l("Network zone"), description=_l("e.g. radiology, office, DMZ."))
    owner = StringField(_l("Owner / contact"), description=_l("Who to call about it."))
    criticality = SelectField(_l("Criticality"), choices=[])
    holds_patient_data = BooleanField(_l("Holds patient data"))
    exposure = SelectField(_l("Intended exposure"), choices=[])
    expected_services = TextAreaField(
        _l("Expected services"),
        description=_l(
            "Ports it should expose, one per line: port/protocol name, e.g. 4242/tcp dicom."
        ),
    )
    ae_titles = TextAreaField(
        _l("DICOM AE titles"), description=_l("One per line; up to 16 characters, no backslash.")
    )
    software = TextAreaField(
        _l("Software (CPE 2.3)"),
        description=_l("One per line, e.g. cpe:2.3:a:orthanc-server:orthanc:1.12.1"),
    )
    tags = StringField(_l("Tags"), description=_l("Words separated by spaces or commas."))
    audit_interval = StringField(
        _l("Audit interval"),
        description=_l(
            "How often to re-check it, e.g. 24h, 3d, 1w. Empty: the default for its criticality."
        ),
    )
    optional_checks = SelectMultipleField(
        _l("Optional checks"),
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,  # the domain parser says what is wrong, in the user's language
        render_kw={"class": "checklist"},
        description=_l(
            "Off by default. Turn them on only for systems you are allowed to test this way: "
            "they try logins and names, which an old device may log or count as failed attempts."
        ),
    )
    notes = TextAreaField(_l("Notes"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = choices("kind")
        self.criticality.choices = choices("criticality")
        self.exposure.choices = choices("exposure")
        self.optional_checks.choices = choices("optional_check")
        self.data_out: AssetData | None = None

    @classmethod
    def from_data(cls, data: AssetData) -> AssetForm:
        values: dict[str, Any] = data.model_dump()
        for name in LIST_FIELDS:
            values[name] = ("\n" if name != "tags" else " ").join(values[name])
        from inventory.validators import format_interval

        values["audit_interval"] = format_interval(data.audit_interval)
        return cls(data=values)

    def raw(self) -> dict[str, Any]:
        return {name: getattr(self, name).data for name in ASSET_FIELDS}

    def validate(self, extra_validators: Any = None) -> bool:
        """WTForms checks, then the domain parsers; their messages go next to each field."""
        ok = super().validate(extra_validators)
        try:
            self.data_out = validate_asset(self.raw())
        except InvalidInput as exc:
            self.add_service_errors(exc)
            return False
        return ok

    def add_service_errors(self, exc: InvalidInput) -> None:
        place_errors(self, exc)


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV or JSON file"), validators=[FileRequired(_l("Choose a file to import."))]
    )
