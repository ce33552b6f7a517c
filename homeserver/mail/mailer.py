"""Sending mail over SMTP with Twisted's client, never on the request path.

`Mailer.send` renders a text and an HTML part from templates, builds a multipart/alternative
message and hands it to a background task: the caller (a request handler) answers at once,
and a mail server that is down or refuses the message only produces a warning in the log.
STARTTLS is used when the server offers it (`enable_tls`), or required
(`require_transport_security`), with the certificate checked against `smtp_host`.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from io import BytesIO
from typing import Any

from twisted.internet import defer
from twisted.internet.ssl import optionsForClientTLS
from twisted.mail.smtp import ESMTPSenderFactory

from homeserver.config import EmailConfig
from homeserver.identifiers import host_of
from homeserver.mail.templates import Templates

logger = logging.getLogger(__name__)

# Seconds to wait for the mail server to connect or answer before giving up on the mail.
SMTP_TIMEOUT_S = 30
# Connection attempts after the first one fails (the factory also retries on 4xx answers).
SMTP_RETRIES = 2


class Mailer:
    def __init__(
        self, config: EmailConfig, server_name: str, templates: Templates, reactor: Any
    ) -> None:
        self.config = config
        self.templates = templates
        self.reactor = reactor
        # The name we greet the mail server with and put in Message-IDs.
        self.host = host_of(server_name)
        self.sender = parseaddr(config.notif_from)[1]
        self._pending: set[defer.Deferred[None]] = set()

    def send(self, to: str, subject: str, template: str, variables: dict[str, Any]) -> None:
        """Renders `template`.txt and `template`.html and mails them to `to` in the background."""
        sending = defer.ensureDeferred(self._deliver(to, subject, template, variables))
        self._pending.add(sending)
        sending.addBoth(lambda _: self._pending.discard(sending))

    def build_message(
        self, to: str, subject: str, template: str, variables: dict[str, Any]
    ) -> bytes:
        message = EmailMessage()
        message["From"] = self.config.notif_from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(self.reactor.seconds(), usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.host)
        # Quoted-printable: the text may hold non-ASCII characters, and not every mail server
        # accepts 8-bit bodies.
        text = self.templates.render(f"{template}.txt", **variables)
        html = self.templates.render(f"{template}.html", **variables)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        # "\n" line ends: Twisted's SMTP client turns them into CRLF (and escapes leading dots).
        return message.as_bytes()

    async def drain(self) -> None:
        """Waits until every mail handed to `send` was delivered or given up on."""
        while self._pending:
            await defer.DeferredList(list(self._pending), consumeErrors=True)

    def stop(self) -> None:
        """Abandons the mails still being sent (at shutdown)."""
        for sending in list(self._pending):
            sending.cancel()

    async def _deliver(
        self, to: str, subject: str, template: str, variables: dict[str, Any]
    ) -> None:
        try:
            message = self.build_message(to, subject, template, variables)
            await self._smtp_send(to, message)
        except defer.CancelledError:
            logger.info("Mail to %s abandoned at shutdown", to)
        except Exception as error:
            # The request that asked for the mail has been answered already: the sender finds
            # out by not receiving it, the admin from this line.
            logger.warning("Could not send mail to %s: %s", to, error)

    def _smtp_send(self, to: str, message: bytes) -> defer.Deferred[Any]:
        config = self.config

        def cancel(_: defer.Deferred[Any]) -> None:
            factory.sendFinished = True  # no more retries
            if factory.currentProtocol is not None:
                factory.currentProtocol.transport.abortConnection()
            else:
                connector.disconnect()

        done: defer.Deferred[Any] = defer.Deferred(cancel)
        factory = ESMTPSenderFactory(
            config.smtp_user.encode("utf-8") if config.smtp_user else None,
            config.smtp_pass.encode("utf-8") if config.smtp_pass else None,
            self.sender,
            [to],
            BytesIO(message),
            done,
            retries=SMTP_RETRIES,
            timeout=SMTP_TIMEOUT_S,
            # No context means STARTTLS is never tried (enable_tls: false).
            contextFactory=optionsForClientTLS(config.smtp_host) if config.enable_tls else None,
            # Plain HELO for servers without ESMTP, unless TLS or a login is required.
            heloFallback=True,
            requireAuthentication=config.smtp_user is not None,
            requireTransportSecurity=config.require_transport_security,
        )
        factory.domain = self.host.encode("ascii")
        connector = self.reactor.connectTCP(
            config.smtp_host, config.smtp_port, factory, timeout=SMTP_TIMEOUT_S
        )
        return done
