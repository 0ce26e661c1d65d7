"""The accepted-risk form: a reason and an expiry date, checked again by the service."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from inventory.errors import InvalidInput
from inventory.web.helpers import place_errors


class AcceptRiskForm(FlaskForm):
    # No WTForms "required" here: the service checks the reason and the date together, so that
    # every problem is reported at once.
    reason = TextAreaField(
        _l("Reason"),
        description=_l(
            "Why this weakness is tolerated for now, e.g. the vendor supports no other setting "
            "and the device is on an isolated network."
        ),
    )
    until = StringField(
        _l("Accepted until"),
        description=_l("At most one year from today. After this date the finding is open again."),
        render_kw={"type": "date"},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.until_date: date | None = None

    def validate_until(self, field: StringField) -> None:
        text = (field.data or "").strip()
        if not text:
            return  # the service says that a date is needed
        try:
            self.until_date = date.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                _l("%(value)s is not a date (expected e.g. 2027-03-31).", value=text[:40])
            ) from None

    def add_service_errors(self, exc: InvalidInput) -> None:
        place_errors(self, exc, keep_form_checks=True)
