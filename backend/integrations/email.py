"""Outgoing mail over SMTP (aiosmtplib), or to the log when no SMTP server is configured.

Sending happens in tasks this object owns, after the request has been answered; a failure is
logged, never shown to the client. `close()` waits for mail still in flight.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from backend.config import Settings

log = structlog.get_logger("devora.email")


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.sender = settings.smtp_from
        self.timeout_s = settings.smtp_timeout_s
        self.smtp = urlsplit(settings.smtp_url.get_secret_value()) if settings.smtp_url else None
        self._tasks: set[asyncio.Task[None]] = set()

    def send_later(self, mail: Mail) -> None:
        """Queue `mail`; the caller does not wait for the SMTP server."""
        self.after_response(lambda: self._send(mail))

    def after_response(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` (which decides whether to send mail) in a task of ours, so the request
        is answered first and equally fast whatever `work` finds."""
        task = asyncio.create_task(self._guarded(work), name="send-mail")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:  # no client is waiting: log it, never lose it silently
            log.error("mail_work_failed", error=repr(exc))

    async def _send(self, mail: Mail) -> None:
        if self.smtp is None:
            log.warning(
                "mail_not_sent_no_smtp",
                note="DEVELOPMENT AID, never for production use: no SMTP_URL is set, so this "
                "mail and any token in it exist only in this log",
                to=mail.to,
                subject=mail.subject,
                body=mail.body,
            )
            return
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.smtp.hostname,
                port=self.smtp.port or 25,
                username=unquote(self.smtp.username) if self.smtp.username else None,
                password=unquote(self.smtp.password) if self.smtp.password else None,
                use_tls=self.smtp.scheme == "smtps",
                # smtp://: STARTTLS whenever the server offers it.
                start_tls=False if self.smtp.scheme == "smtps" else None,
                timeout=self.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.error("mail_failed", to=mail.to, subject=mail.subject, error=repr(exc))

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.timeout_s)
