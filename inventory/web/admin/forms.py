from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class NewUserForm(FlaskForm):
    username = StringField(
        _l("User name"), validators=[DataRequired(_l("Enter a user name.")), Length(max=64)]
    )
    role = SelectField(_l("Role"), choices=[])
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=1024)],
        description=_l("Leave empty to generate one; it is shown once."),
    )


class EditUserForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[])
    active = BooleanField(_l("Account active"))
    password = PasswordField(
        _l("New password"),
        validators=[Optional(), Length(max=1024)],
        description=_l("Leave empty to keep the current password."),
    )
