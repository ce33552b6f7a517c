"""HomeServer: builds each service once, wires the observers, opens the listeners.

This is the only module that knows every part; the parts know only what they are given.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate

from client_api.site import build_site
from federation.backfill import Backfiller
from federation.client import build_federation_client
from federation.edus import EduHandlers
from federation.fanout import PduFanout
from federation.inbound_auth import ServerAuthenticator
from federation.invites import InviteHandler
from federation.joins import JoinHandler
from federation.keyring import Keyring
from federation.queries import query_directory
from federation.sender import FederationSender
from federation.servlets.directory import install_remote_directory
from federation.servlets.media import install_remote_media
from federation.transactions import TransactionHandler
from homeserver.accounts.auth import Authenticator
from homeserver.accounts.service import AccountService
from homeserver.accounts.threepids import ThreepidService
from homeserver.clock import Clock
from homeserver.config import HomeServerConfig, ListenerConfig
from homeserver.directory import Directories
from homeserver.e2ee import E2ee
from homeserver.ephemeral import EphemeralStreams
from homeserver.events.signing import read_signing_key
from homeserver.ignored_users import IgnoredUsers
from homeserver.mail.mailer import Mailer
from homeserver.mail.templates import Templates
from homeserver.media.repository import build_media_repository
from homeserver.ratelimit import Ratelimiter, RateLimiters
from homeserver.rooms.event_creation import EventCreator
from homeserver.rooms.membership import MembershipService
from homeserver.rooms.remote_events import RemoteEventHandler
from homeserver.rooms.room_creation import RoomCreator
from homeserver.rooms.spaces import SpaceHierarchy
from homeserver.rooms.upgrade import RoomUpgrader
from homeserver.sync.notifier import Notifier
from homeserver.sync.pagination import PaginationHandler
from homeserver.sync.sync import SyncHandler
from push.bulk_evaluator import BulkPushEvaluator
from push.pushers import build_pusher_pool
from push.rules_service import PushRulesService
from storage.store import Storage, open_database

logger = logging.getLogger(__name__)


class HomeServer:
    def __init__(self, config: HomeServerConfig, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.clock = Clock(reactor)
        self.server_name = config.server_name
        self.signing_key = read_signing_key(config.signing_key_path)
        db_config = config.database
        self.db = open_database(
            reactor,
            db_config.engine,
            sqlite_path=db_config.sqlite_path,
            postgres_conninfo=db_config.postgres_conninfo,
            cp_min=db_config.cp_min,
            cp_max=db_config.cp_max,
        )
        self.storage = Storage(self.db)
        self.rate_limiters = _rate_limiters(config, self.clock)
        self.event_creator = EventCreator(
            self.server_name, self.signing_key, self.storage, self.clock
        )
        self.membership = MembershipService(self.server_name, self.storage, self.event_creator)
        self.room_creator = RoomCreator(
            self.server_name, self.storage, self.event_creator, config.default_room_version
        )
        self.notifier = Notifier(self.storage, self.clock)
        self.storage.persister.add_observer(self.notifier.on_new_events)
        # Typing, receipts and presence: sync sources beside room events (homeserver/ephemeral).
        self.ephemeral = EphemeralStreams(config, self.storage, self.notifier, self.clock)
        # Room stats, public room list, user directory; persister observers like the notifier.
        self.directories = Directories(config, self.storage)
        self.spaces = SpaceHierarchy(self.storage, self.clock)
        self.room_upgrader = RoomUpgrader(self.storage, self.event_creator, self.membership)
        self.authenticator = Authenticator(self.storage, self.clock)
        self.accounts = AccountService(config, self.storage, self.clock, self.membership)
        # Email addresses: validation mails (sign-up, added addresses, password resets) and the
        # pages their links open. Templates exist without an email section too: a link can
        # still be followed after the section was removed, and gets its failure page.
        email = config.email
        self.templates = Templates(
            email.template_dir if email else None,
            config.config_path,
            app_name=email.app_name if email else "Matrix",
            server_name=self.server_name,
        )
        self.mailer = Mailer(email, self.server_name, self.templates, reactor) if email else None
        self.threepids = ThreepidService(
            config,
            self.storage.threepids,
            self.clock,
            self.mailer,
            [
                ("address", self.rate_limiters["3pid_validation_address"]),
                ("ip", self.rate_limiters["3pid_validation_ip"]),
            ],
        )
        # End-to-end encryption: to-device and device-list streams in /sync; deleting a device
        # deletes its keys and messages.
        self.e2ee = E2ee(self.server_name, self.storage, self.notifier, self.clock)
        for source in self.e2ee.sync_sources():
            self.notifier.add_source(source)
        self.accounts.device_observers.append(self.e2ee.on_devices_deleted)
        # One cache of ignore lists, shared by /sync and /messages.
        self.ignored_users = IgnoredUsers(self.storage)
        self.push_rules = PushRulesService(self.storage, self.notifier)
        self.pushers = build_pusher_pool(config, reactor, self.storage, self.clock, self.mailer)
        self.accounts.device_observers.append(self.pushers.on_devices_deleted)
        # Every new event runs through the local members' push rules before it is written;
        # once written, the pushers of the users it notifies wake up.
        self.storage.persister.preparers.append(
            BulkPushEvaluator(
                self.server_name, self.storage, self.push_rules, self.pushers.note_recipients
            ).prepare
        )
        self.storage.persister.add_observer(self.pushers.on_new_events)
        self.sync = SyncHandler(
            self.storage, self.notifier, self.clock, ignored_users=self.ignored_users,
            push_rules=self.push_rules,
        )
        self.pagination = PaginationHandler(
            self.storage, config.pagination_max_limit, self.clock, ignored_users=self.ignored_users
        )
        self.media = build_media_repository(config, self.storage.media, self.clock, reactor)
        # Federation: signed requests out, other servers' keys, signatures checked on the way in.
        self.federation_client = build_federation_client(config, reactor, self.signing_key)
        self.keyring = Keyring(
            self.server_name,
            self.signing_key,
            dict(config.old_signing_keys),
            self.storage.server_keys,
            self.federation_client,
            config.trusted_key_servers,
            self.clock.time_msec,
        )
        self.server_authenticator = ServerAuthenticator(
            self.server_name, self.keyring, config.federation_domain_whitelist, self.clock.time_msec
        )
        # Events from other servers into our rooms, and ours out to theirs.
        self.remote_events = RemoteEventHandler(self.storage, self.event_creator.locks)
        self.federation_sender = FederationSender(
            self.server_name, self.storage.federation_queue, self.federation_client, self.clock
        )
        self.storage.persister.add_observer(
            PduFanout(self.server_name, self.storage, self.federation_sender).on_new_events
        )
        self.federation_transactions = TransactionHandler(self)
        self.federation_joins = JoinHandler(self)
        self.federation_invites = InviteHandler(self)
        # Other servers' media, room directories and space hierarchies, for local clients.
        install_remote_media(self)
        install_remote_directory(self)
        self.pagination.backfiller = Backfiller(self).backfill
        self.membership.remote_inviter = self.federation_invites.countersign
        EduHandlers(self).register()
        self.membership.remote_joiner = self.federation_joins.join_remote_room
        self.membership.remote_leaver = self.federation_joins.leave_remote_room
        self.membership.remote_knocker = self.federation_joins.knock_remote_room
        self.membership.remote_alias_resolver = lambda alias: query_directory(
            self.federation_client, alias
        )
        self.ports: list[IListeningPort] = []
        self.sites: list[Any] = []

    async def start(self) -> None:
        await self.storage.start()
        await self.ephemeral.start()
        await self.directories.start()
        await self.federation_sender.start()
        await self.pushers.start()

    def listen(self) -> list[IListeningPort]:
        for listener in self.config.listeners:
            self.ports.extend(self._listen(listener))
        return self.ports

    def _listen(self, listener: ListenerConfig) -> list[IListeningPort]:
        site = build_site(self, listener)
        self.sites.append(site)
        tls = self._tls_options() if listener.tls else None
        ports = []
        for address in listener.bind_addresses:
            try:
                if tls is not None:
                    port = self.reactor.listenSSL(listener.port, site, tls, interface=address)
                else:
                    port = self.reactor.listenTCP(listener.port, site, interface=address)
                ports.append(port)
            except Exception as error:
                # Binding "::" often covers IPv4 too, so a following "0.0.0.0" finds it taken.
                if address == "0.0.0.0" and any(p.getHost().host == "::" for p in ports):
                    continue
                raise RuntimeError(
                    f"cannot listen on {address}:{listener.port}: {error}"
                ) from error
            scheme = "https" if tls is not None else "http"
            logger.info("listening on %s://%s:%d", scheme, address, ports[-1].getHost().port)
        return ports

    def _tls_options(self) -> CertificateOptions:
        # The config checked that both paths are set when a listener has tls: true.
        assert self.config.tls_certificate_path and self.config.tls_private_key_path
        with open(self.config.tls_certificate_path, "rb") as f:
            chain = f.read()
        with open(self.config.tls_private_key_path, "rb") as f:
            key = PrivateCertificate.loadPEM(f.read() + chain)
        extra = [Certificate.loadPEM(pem) for pem in _pem_blocks(chain)[1:]]
        return CertificateOptions(
            privateKey=key.privateKey.original,
            certificate=key.original,
            extraCertChain=[c.original for c in extra],
        )

    async def stop(self) -> None:
        for port in self.ports:
            await port.stopListening()
        self.ports = []
        # Peers (other servers, long-polling clients) keep connections alive: close them too.
        closed = sum(site.close_connections() for site in self.sites)
        self.sites = []
        if closed:
            await self.clock.sleep(0)  # aborted connections finish closing on the next turn
        self.ephemeral.stop()
        self.federation_sender.stop()
        await self.pushers.stop()
        if self.mailer is not None:
            self.mailer.stop()
        await self.federation_client.http.close()
        self.db.stop()


def _pem_blocks(pem: bytes) -> list[bytes]:
    end = b"-----END CERTIFICATE-----"
    return [block + end for block in pem.split(end) if b"-----BEGIN CERTIFICATE-----" in block]


def _rate_limiters(config: HomeServerConfig, clock: Clock) -> RateLimiters:
    def limiter(rc: Any) -> Ratelimiter:
        return Ratelimiter(rc.per_second, rc.burst_count, clock)

    return RateLimiters(
        {
            "message": limiter(config.rc_message),
            "registration": limiter(config.rc_registration),
            "login_address": limiter(config.rc_login.address),
            "login_account": limiter(config.rc_login.account),
            "login_failed": limiter(config.rc_login.failed_attempts),
            "join": limiter(config.rc_joins.local),
            "invite": limiter(config.rc_invites.per_user),
            "room_creation": limiter(config.rc_room_creation),
            "media_create": limiter(config.media.rc_media_create),
            # Keyed by email address, and by client IP, in the threepid service.
            "3pid_validation_address": limiter(config.rc_3pid_validation),
            "3pid_validation_ip": limiter(config.rc_3pid_validation),
        }
    )
