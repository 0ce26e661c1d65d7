"""Sending a report: by e-mail over SMTP (STARTTLS or TLS, with or without a login, from
[reports] settings) or into a folder. No database here: the services record what happened.

A report is never cut short. Files that fit under `max_attachment_mb` are attached as they are;
larger ones are attached as one zip; if even that is too large, nothing is attached and the mail
says so and where to download the report. The outcome says which happened.
"""

from __future__ import annotations

import io
import os
import smtplib
import ssl
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from inventory.settings import ReportSettings


class DeliveryError(Exception):
    """Sending failed; the message is shown on the report's page and the delivery is retried."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. application/pdf
    content: bytes


@dataclass(frozen=True)
class Packed:
    attachments: list[Attachment]
    how: str  # "attached", "zipped" or "too-large"
    size: int  # bytes of what the report's files weigh, before any packing


def pack(files: Sequence[Attachment], limit: int, zip_name: str) -> Packed:
    """Attach as they are, or zipped, or not at all (the mail then links to the report)."""
    size = sum(len(f.content) for f in files)
    if size <= limit:
        return Packed(list(files), "attached", size)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for f in files:
            archive.writestr(f.filename, f.content)
    zipped = buffer.getvalue()
    if len(zipped) <= limit:
        return Packed([Attachment(zip_name, "application/zip", zipped)], "zipped", size)
    return Packed([], "too-large", size)


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment],
) -> EmailMessage:
    message = EmailMessage()
    # Header values are plain text set through the API, which refuses line breaks: a report
    # title cannot add headers.
    message["From"] = sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "vigie.local")
    message.set_content(body)
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.content, maintype=maintype, subtype=subtype, filename=item.filename
        )
    return message


def send_mail(settings: ReportSettings, message: EmailMessage) -> None:
    """Hand one message to the SMTP server; DeliveryError says why not."""
    if not settings.smtp_host:
        raise DeliveryError("no SMTP server is configured ([reports] smtp_host)")
    try:
        context = ssl.create_default_context(cafile=settings.smtp_cafile or None)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(
            f"cannot read the CA bundle {settings.smtp_cafile} ([reports] smtp_cafile)"
        ) from exc
    try:
        client: smtplib.SMTP
        if settings.smtp_ssl:
            client = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.smtp_timeout,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            )
        with client:
            client.ehlo()
            if not settings.smtp_ssl and settings.smtp_starttls:
                client.starttls(context=context)
                client.ehlo()
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            refused = client.send_message(message)
            if refused:
                raise DeliveryError(f"the server refused {', '.join(sorted(refused))}")
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the SMTP server refused the login ({exc.smtp_code})") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(
            "the SMTP server does not offer STARTTLS (set smtp_starttls = false only on a "
            "trusted network, or smtp_ssl = true for port 465)"
        ) from exc
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP error: {exc}"[:500]) from exc
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS error with the SMTP server: {exc.reason or exc}"[:500]) from exc
    except OSError as exc:
        raise DeliveryError(
            f"cannot reach the SMTP server {settings.smtp_host}:{settings.smtp_port}: "
            f"{exc.strerror or exc.__class__.__name__}"
        ) from exc


def write_folder(folder: Path, files: Sequence[Attachment]) -> list[Path]:
    """Write the files into `folder` (created); each appears whole or not at all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for item in files:
            target = folder / item.filename
            tmp = target.with_name(f".{item.filename}.{os.getpid()}.tmp")
            tmp.write_bytes(item.content)
            os.replace(tmp, target)
            written.append(target)
        return written
    except OSError as exc:
        raise DeliveryError(
            f"cannot write into {folder}: {exc.strerror or exc.__class__.__name__}"
        ) from exc
