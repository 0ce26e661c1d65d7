"""The feed upload form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms.validators import InputRequired


class FeedUploadForm(FlaskForm):
    files = MultipleFileField(
        _l("Feed files"),
        validators=[InputRequired(_l("Choose at least one feed file."))],
        description=_l(
            "NVD API 2.0 CVE JSON files and the CISA KEV catalog (JSON), gzip-compressed or not. "
            "All files are imported or none."
        ),
    )
