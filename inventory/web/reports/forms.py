"""The report schedule form. Values are checked by the service (services/report_schedules.py),
whose messages land next to their field; the form carries the CSRF token and renders inputs."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

SCOPES = [
    ("all", _l("Every asset")),
    ("site", _l("The assets of one site")),
    ("zone", _l("The assets of one network zone")),
    ("kind", _l("The assets of one kind")),
    ("tag", _l("The assets with one tag")),
]
FORMATS = [
    ("pdf", _l("PDF (to read, print and file)")),
    ("html", _l("HTML (one self-contained page)")),
    ("csv", _l("CSV of the findings (spreadsheets)")),
    ("json", _l("JSON (for other programs)")),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ScheduleForm(FlaskForm):
    name = StringField(
        _l("Name"), description=_l("E.g. Weekly re-audit."), render_kw={"maxlength": 100}
    )
    scope = SelectField(_l("Covers"), choices=SCOPES, validate_choice=False)
    scope_value = StringField(
        _l("Site, zone, kind or tag"),
        description=_l("As written on the assets. Empty when the report covers every asset."),
        render_kw={"maxlength": 100},
    )
    cron = StringField(
        _l("When"),
        description=_l(
            "Five fields: minute hour day month weekday, in the configured time zone. "
            "0 7 * * mon: every Monday at 07:00; 0 7 1 * *: the first day of each month at 07:00."
        ),
        render_kw={"maxlength": 100, "spellcheck": "false", "autocomplete": "off"},
    )
    formats = MultiCheckboxField(_l("Formats"), choices=FORMATS, validate_choice=False)
    language = SelectField(_l("Language of the report"), validate_choice=False)
    recipients = TextAreaField(
        _l("Send by e-mail to"),
        description=_l("E-mail addresses, separated by commas or new lines. Empty: no e-mail."),
        render_kw={"rows": 3, "spellcheck": "false"},
    )
    folder = StringField(
        _l("Also write to the folder"),
        description=_l(
            "A folder name inside the reports folder of the server, e.g. weekly. Empty: none."
        ),
        render_kw={"maxlength": 100},
    )
    enabled = BooleanField(_l("Active (runs at the times above)"), default=True)
