"""The maintenance window form. Values are checked by the service (services/windows.py), whose
messages land next to their field; the form carries the CSRF token and renders the inputs."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

DAYS = [
    ("mon", _l("Monday")),
    ("tue", _l("Tuesday")),
    ("wed", _l("Wednesday")),
    ("thu", _l("Thursday")),
    ("fri", _l("Friday")),
    ("sat", _l("Saturday")),
    ("sun", _l("Sunday")),
]
SCOPES = [
    ("all", _l("Every asset")),
    ("zone", _l("The assets of one network zone")),
    ("site", _l("The assets of one site")),
]
MODES = [
    ("blackout", _l("No audits during this time")),
    ("allowed", _l("Audits only during this time")),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class WindowForm(FlaskForm):
    name = StringField(
        _l("Name"), description=_l("E.g. Radiology opening hours."), render_kw={"maxlength": 100}
    )
    scope = SelectField(_l("Applies to"), choices=SCOPES, validate_choice=False)
    value = StringField(
        _l("Zone or site"),
        description=_l("As written on the assets (any case). Empty for every asset."),
        render_kw={"maxlength": 100},
    )
    mode = SelectField(_l("During this time"), choices=MODES, validate_choice=False)
    days = MultiCheckboxField(
        _l("Days"),
        choices=DAYS,
        validate_choice=False,
        description=_l("The days the window starts on."),
    )
    start_time = StringField(_l("From"), render_kw={"type": "time"})
    end_time = StringField(
        _l("To"),
        render_kw={"type": "time"},
        description=_l(
            "Local time. An end before the start runs past midnight (e.g. 22:00 to 05:00)."
        ),
    )
