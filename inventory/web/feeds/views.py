"""Vulnerability feeds: the admin page with the upload form and each feed's state, and the
product search behind the asset form's software helper."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import Role
from inventory.services import vulns
from inventory.web import csrf
from inventory.web.feeds.forms import FeedUploadForm
from inventory.web.helpers import actor, role_required, settings, translate

bp = Blueprint("feeds", __name__)


def _page(form: FeedUploadForm, status: int = 200) -> Any:
    return render_template(
        "feeds/index.html",
        form=form,
        feeds=vulns.feed_status(session=get_session()),
        max_upload_mb=settings().vulns.max_upload_mb,
    ), status


def _flash_results(results: list[vulns.ImportResult], rematched: vulns.RematchResult) -> None:
    for r in results:
        if r.older:
            message = _(
                "%(file)s: this KEV catalog is older than the one already imported; "
                "nothing changed.",
                file=r.filename,
            )
        else:
            message = _(
                "%(file)s: %(records)d records (%(created)d new, %(updated)d updated, "
                "%(unchanged)d unchanged).",
                file=r.filename,
                records=r.records,
                created=r.created,
                updated=r.updated,
                unchanged=r.unchanged,
            )
        flash(message, "info" if r.older else "success")
    flash(
        _(
            "Every asset was matched again: %(opened)d new findings, %(reopened)d reopened, "
            "%(fixed)d fixed.",
            opened=rematched.opened,
            reopened=rematched.reopened,
            fixed=rematched.fixed,
        ),
        "success",
    )


# The upload may be far larger than other forms ([vulns] max_upload_mb, not [web]): the global
# CSRF check would read it under the general limit first, so the form checks its token itself.
@bp.route("/admin/feeds", methods=["GET", "POST"])
@csrf.exempt
@role_required(Role.admin)
def feeds_page() -> Any:
    limit = settings().vulns.max_upload_mb
    request.max_content_length = limit * 1024 * 1024
    try:
        form = FeedUploadForm()
    except RequestEntityTooLarge:
        form = FeedUploadForm(formdata=None)
        form.files.errors = [
            _(
                "This upload is larger than %(max)d MB, the limit of this page; nothing was "
                "imported. Import such files on the server with `inventory feeds import`.",
                max=limit,
            )
        ]
        return _page(form, 413)
    if request.method == "GET":
        return _page(form)
    uploads = [f for f in (form.files.data or []) if getattr(f, "filename", "")]
    if not form.validate_on_submit() or not uploads:
        if form.csrf_token.errors:
            form.files.errors = [
                _(
                    "This form has expired or was sent from elsewhere. "
                    "Reload the page and try again."
                )
            ]
        elif not form.files.errors:
            form.files.errors = [_("Choose at least one feed file.")]
        return _page(form, 400)
    folder = settings().var_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    db = get_session()
    with tempfile.TemporaryDirectory(dir=folder, prefix="feeds-") as tmp:
        files: list[tuple[Path, str]] = []
        for number, upload in enumerate(uploads):
            path = Path(tmp) / f"{number}.upload"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                upload.save(handle)
            name = os.path.basename(upload.filename or f"file {number + 1}")[:200]
            files.append((path, name))
        try:
            results, rematched = vulns.import_and_rematch(
                session=db,
                files=files,
                actor=actor(),
                source="upload",
                options=vulns.options_from(settings()),
            )
        except InvalidInput as exc:
            form.files.errors = [translate(exc.message, exc.params)]
            return _page(form, 400)
    _flash_results(results, rematched)
    return redirect(url_for("feeds.feeds_page"))


@bp.get("/vulns/products")
@role_required(Role.viewer)
def cpe_search() -> Any:
    """Vendor and product names from the imported feeds, for the asset form's helper."""
    text = request.args.get("q", "")[:100]
    return jsonify(
        [
            {
                "part": p.part,
                "vendor": p.vendor,
                "product": p.product,
                "records": p.records,
                "value": f"{p.vendor}:{p.product}",
                "cpe": f"cpe:2.3:{p.part}:{p.vendor}:{p.product}",
            }
            for p in vulns.search_products(session=get_session(), text=text)
        ]
    )
