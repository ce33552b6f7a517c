"""Pushers: setting them up (`/pushers/set`, `/pushers/ack`) and delivering to them.

Each pusher has a worker that sends the user's notifications (event_push_actions rows) after
its `last_stream_ordering`, oldest first, and records each one it handled: a restart resumes
where it stopped, and nothing is pushed twice. A delivery that fails for a reason that may pass
is retried with exponential backoff; a notification still failing after GIVE_UP_AFTER_MS is
skipped. Web Push pushers (MSC4174) stay dormant until the client acknowledges the ack_token
the server pushed to them; dormant, they skip notifications instead of queueing them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from homeserver.errors import Codes, MatrixError, bad_json, not_found
from homeserver.http_client import HttpClient, system_trust_policy
from homeserver.rooms.current_state import member_display_name, room_name_and_alias
from push.delivery import GatewayDelivery, Outcome, WebPushDelivery, load_vapid_key
from push.email_digest import EMAIL_APP_ID, EmailDigests
from push.evaluator import tweaks
from push.payload import PushContext, notification
from storage.lru import LruCache
from storage.push_actions import Notification
from storage.pushers import Pusher

if TYPE_CHECKING:
    from homeserver.clock import Clock
    from homeserver.config import HomeServerConfig
    from homeserver.events.event import Event
    from homeserver.mail.mailer import Mailer
    from storage.store import Storage

logger = logging.getLogger(__name__)

WEBPUSH_KINDS = ("webpush", "org.matrix.msc4174.webpush")
EMAIL_KIND = "email"
ACK_TOKEN_LIFETIME_MS = 5 * 60 * 1000
GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000
# Notifications (GET /notifications, unread counts) are kept this long, swept once a day.
NOTIFICATION_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
SWEEP_INTERVAL_S = 24 * 60 * 60
BATCH = 20
MAIL_BATCH = 100
MAX_PUSHKEY_BYTES = 512
MAX_APP_ID_CHARS = 64


@dataclass
class _Worker:
    pusher: Pusher
    running: defer.Deferred | None = None
    more: bool = False
    timer: Any = None
    failures: int = 0
    failing_since: int | None = None
    stopped: bool = field(default=False)


class PusherPool:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        gateway: GatewayDelivery,
        webpush: WebPushDelivery | None,
        *,
        email: EmailDigests | None = None,
        email_delay_ms: int = 10 * 60 * 1000,
        enabled: bool = True,
        include_content: bool = True,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 600.0,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.gateway = gateway
        self.webpush = webpush
        # Missed-message mail: None when the server sends no mail.
        self.email = email
        self.email_delay_ms = email_delay_ms
        # False (push.enabled): pushers can be set up, but nothing is delivered.
        self.enabled = enabled
        self.include_content = include_content
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._workers: dict[int, _Worker] = {}
        self._sweeper: Any = None
        self._acks_sending: set[defer.Deferred] = set()
        # event_id -> users it notifies, told by the evaluator before the event is written.
        self._recipients: LruCache[str, list[str]] = LruCache(10_000)

    async def start(self) -> None:
        for pusher in await self.storage.pushers.get_all():
            self._add(pusher)
        self._sweeper = self.clock.looping_call(
            SWEEP_INTERVAL_S, lambda: defer.ensureDeferred(self._sweep())
        )

    async def _sweep(self) -> None:
        cutoff = self.clock.time_msec() - NOTIFICATION_RETENTION_MS
        try:
            await self.storage.push_actions.delete_older_than(cutoff)
        except Exception:
            logger.exception("Sweeping old notifications failed")

    async def stop(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        for worker in self._workers.values():
            self._halt(worker)
        self._workers.clear()
        await self.gateway.http.close()

    async def wait_idle(self) -> None:
        """Until nothing is being sent (backoff timers do not count). For tests."""
        while running := [
            *self._acks_sending,
            *(w.running for w in self._workers.values() if w.running is not None),
        ]:
            await defer.DeferredList(running)

    # -- news -----------------------------------------------------------------------------------

    def note_recipients(self, event_id: str, user_ids: list[str]) -> None:
        self._recipients.set(event_id, user_ids)

    def on_new_events(self, events: list[Event]) -> None:
        """A persister observer: wakes the pushers of users the events notify."""
        users: set[str] = set()
        for event in events:
            users.update(self._recipients.get(event.event_id) or ())
            self._recipients.pop(event.event_id)
        if not users:
            return
        for worker in list(self._workers.values()):
            if worker.pusher.user_id in users:
                self._wake(worker)

    # -- setting pushers up ---------------------------------------------------------------------

    async def set_pusher(self, user_id: str, device_id: str | None, body: Mapping[str, Any]
                         ) -> int:
        """POST /pushers/set; the HTTP status to answer (201 for a Web Push pusher that
        awaits its acknowledgement, else 200)."""
        app_id, pushkey = _required_str(body, "app_id"), _required_str(body, "pushkey")
        if len(app_id) > MAX_APP_ID_CHARS or len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM, "app_id or pushkey is too long")
        kind = body.get("kind")
        if kind is None:
            removed = await self.storage.pushers.delete(user_id, app_id, pushkey)
            if removed is not None:
                self._remove(removed)
            return 200
        pusher = self._parse(user_id, device_id, kind, app_id, pushkey, body)
        if kind == EMAIL_KIND:
            await self._check_email_pusher(user_id, app_id, pushkey)
        existing = next((p for p in await self.storage.pushers.get_for_user(user_id)
                         if p.app_id == app_id and p.pushkey == pushkey), None)
        needs_ack = pusher.kind in WEBPUSH_KINDS and (
            existing is None or not existing.activated
            or _ack_relevant(existing.data) != _ack_relevant(pusher.data)
        )
        if existing is not None:
            pusher.created_ts = existing.created_ts
            pusher.last_stream_ordering = existing.last_stream_ordering
        else:
            # A new pusher starts from now: it does not replay old notifications.
            pusher.last_stream_ordering = self.storage.persister.max_stream_ordering
        if needs_ack:
            pusher.activated = False
            pusher.ack_token = str(uuid.uuid4())
            pusher.ack_token_expires_ts = self.clock.time_msec() + ACK_TOKEN_LIFETIME_MS
        stored, removed_ids = await self.storage.pushers.upsert(
            pusher, remove_others=not body.get("append", False)
        )
        for pusher_id in removed_ids:
            self._remove(pusher_id)
        self._remove(stored.id)
        self._add(stored)
        if needs_ack:
            self._send_ack_token(stored)
            return 201
        return 200

    async def ack(self, user_id: str, body: Mapping[str, Any]) -> None:
        """POST /pushers/ack (MSC4174): activates the Web Push pusher the token was sent to."""
        app_id, token = _required_str(body, "app_id"), _required_str(body, "ack_token")
        pushers = [p for p in await self.storage.pushers.get_for_user(user_id)
                   if p.app_id == app_id and p.kind in WEBPUSH_KINDS]
        if not pushers:
            raise not_found("No pusher with this app_id")
        pusher = next((p for p in pushers if p.ack_token == token), None)
        if pusher is None:
            raise MatrixError(400, "M_UNKNOWN_ACTIVATION_TOKEN", "Unknown activation token")
        if (pusher.ack_token_expires_ts or 0) < self.clock.time_msec():
            raise MatrixError(410, "M_EXPIRED_ACTIVATION_TOKEN", "The activation token expired")
        await self.storage.pushers.activate(pusher.id)
        worker = self._workers.get(pusher.id)
        if worker is not None:
            worker.pusher.activated = True
            worker.pusher.ack_token = None

    async def on_devices_deleted(self, user_id: str) -> None:
        """An account device observer: a logged-out device's pushers go with it."""
        devices = {d.device_id for d in await self.storage.accounts.get_devices(user_id)}
        for pusher in await self.storage.pushers.get_for_user(user_id):
            if pusher.device_id is not None and pusher.device_id not in devices:
                await self.storage.pushers.delete_by_id(pusher.id)
                self._remove(pusher.id)

    async def _check_email_pusher(self, user_id: str, app_id: str, address: str) -> None:
        if app_id != EMAIL_APP_ID:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Email pushers have app_id {EMAIL_APP_ID}")
        owned = await self.storage.threepids.get_threepids(user_id)
        if not any(t.medium == "email" and t.address == address for t in owned):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "The pushkey must be an email address validated on this account")

    def _parse(self, user_id: str, device_id: str | None, kind: Any, app_id: str,
               pushkey: str, body: Mapping[str, Any]) -> Pusher:
        supported = {"http": True, EMAIL_KIND: self.email is not None,
                     **dict.fromkeys(WEBPUSH_KINDS, self.webpush is not None)}
        if not supported.get(kind, False):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unsupported pusher kind {kind!r}")
        data = body.get("data", {} if kind == EMAIL_KIND else None)
        if not isinstance(data, dict):
            raise MatrixError(400, Codes.MISSING_PARAM, "'data' is required")
        if kind == EMAIL_KIND:
            return self._pusher(user_id, device_id, kind, app_id, pushkey, body, data)
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise MatrixError(400, Codes.INVALID_PARAM, "data.url must be an HTTPS URL")
        if kind == "http" and not url.split("?")[0].endswith("/_matrix/push/v1/notify"):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "data.url must have the path /_matrix/push/v1/notify")
        if kind in WEBPUSH_KINDS and not isinstance(data.get("auth"), str):
            raise MatrixError(400, Codes.MISSING_PARAM, "data.auth is required for Web Push")
        return self._pusher(user_id, device_id, kind, app_id, pushkey, body, data)

    def _pusher(self, user_id: str, device_id: str | None, kind: str, app_id: str,
                pushkey: str, body: Mapping[str, Any], data: dict[str, Any]) -> Pusher:
        fields = {}
        for name in ("app_display_name", "device_display_name", "lang"):
            fields[name] = _required_str(body, name)
        profile_tag = body.get("profile_tag")
        if profile_tag is not None and not isinstance(profile_tag, str):
            raise bad_json("'profile_tag' must be a string")
        return Pusher(
            id=0, user_id=user_id, device_id=device_id, kind=kind, app_id=app_id,
            pushkey=pushkey, profile_tag=profile_tag, data=dict(data),
            created_ts=self.clock.time_msec(), **fields,
        )

    def _send_ack_token(self, pusher: Pusher) -> None:
        assert self.webpush is not None
        payload = {"app_id": pusher.app_id, "ack_token": pusher.ack_token}
        sending = defer.ensureDeferred(self.webpush.deliver(pusher, payload)).addErrback(
            lambda f: logger.warning("Could not send the Web Push ack token: %s", f.value)
        )
        self._acks_sending.add(sending)
        sending.addBoth(lambda _: self._acks_sending.discard(sending))

    # -- workers --------------------------------------------------------------------------------

    def _add(self, pusher: Pusher) -> None:
        worker = self._workers[pusher.id] = _Worker(pusher)
        self._wake(worker)  # catch up on anything since its position

    def _remove(self, pusher_id: int) -> None:
        worker = self._workers.pop(pusher_id, None)
        if worker is not None:
            self._halt(worker)

    def _halt(self, worker: _Worker) -> None:
        worker.stopped = True
        if worker.timer is not None and worker.timer.active():
            worker.timer.cancel()

    def _wake(self, worker: _Worker) -> None:
        if worker.stopped or not self.enabled:
            return
        if worker.running is not None:
            worker.more = True
            return
        if worker.timer is not None and worker.timer.active():
            return  # backing off: the retry will see what is new
        worker.more = False
        running = defer.ensureDeferred(self._run(worker))
        if not running.called:
            worker.running = running

    async def _run(self, worker: _Worker) -> None:
        try:
            while not worker.stopped:
                if worker.pusher.kind == EMAIL_KIND:
                    progressed = await self._mail_batch(worker)
                else:
                    progressed = await self._push_batch(worker)
                if progressed is None:
                    return  # backing off, or removed
                if not progressed and not worker.more:
                    return
                worker.more = False
        except Exception:
            logger.exception("Pusher %s of %s failed", worker.pusher.app_id,
                             worker.pusher.user_id)
        finally:
            worker.running = None

    async def _push_batch(self, worker: _Worker) -> bool | None:
        """Pushes what is due; True if it handled something, None if it must stop for now."""
        pusher = worker.pusher
        due = await self.storage.push_actions.get_unpushed(
            pusher.user_id, pusher.last_stream_ordering, BATCH
        )
        for item in due:
            if worker.stopped:
                return None
            outcome = Outcome.DROPPED if not pusher.activated else await self._deliver(
                pusher, item
            )
            if outcome is Outcome.REMOVE:
                logger.info("Removing pusher %s of %s: its receiver refused it",
                            pusher.app_id, pusher.user_id)
                await self.storage.pushers.delete_by_id(pusher.id)
                self._remove(pusher.id)
                return None
            if outcome is Outcome.RETRY and not self._given_up(worker):
                self._back_off(worker)
                return None
            worker.failures, worker.failing_since = 0, None
            pusher.last_stream_ordering = item.stream_ordering
            await self.storage.pushers.set_position(pusher.id, item.stream_ordering)
        return bool(due)

    async def _mail_batch(self, worker: _Worker) -> bool | None:
        """Mails a digest of what is still unread once the oldest of it is email_delay_ms old;
        what the user read meanwhile is never mailed."""
        pusher = worker.pusher
        due = await self.storage.push_actions.get_unpushed(
            pusher.user_id, pusher.last_stream_ordering, MAIL_BATCH
        )
        if not due or self.email is None:
            return False
        unread = [n for n in due if not n.read]
        if unread:
            wait_ms = unread[0].ts + self.email_delay_ms - self.clock.time_msec()
            if wait_ms > 0:
                worker.timer = self.clock.call_later(wait_ms / 1000, self._wake, worker)
                return None
            await self.email.send(pusher, unread)
        pusher.last_stream_ordering = due[-1].stream_ordering
        await self.storage.pushers.set_position(pusher.id, pusher.last_stream_ordering)
        return True

    def _given_up(self, worker: _Worker) -> bool:
        now = self.clock.time_msec()
        if worker.failing_since is None:
            worker.failing_since = now
        return now - worker.failing_since > GIVE_UP_AFTER_MS

    def _back_off(self, worker: _Worker) -> None:
        worker.failures += 1
        delay = min(self.initial_backoff_s * 2 ** min(worker.failures - 1, 30),
                    self.max_backoff_s)
        worker.timer = self.clock.call_later(delay, self._wake, worker)

    async def _deliver(self, pusher: Pusher, item: Notification) -> Outcome:
        event = await self.storage.events.get_event(item.event_id)
        if event is None:
            return Outcome.DROPPED
        context = await self._context(pusher.user_id, event)
        if pusher.kind in WEBPUSH_KINDS:
            assert self.webpush is not None
            payload = notification(event, context, item.actions)
            return await self.webpush.deliver(pusher, payload)
        body = notification(
            event, context, item.actions,
            event_id_only=pusher.data.get("format") == "event_id_only",
            include_content=self.include_content,
        )
        return await self.gateway.deliver(pusher, body, tweaks(item.actions))

    async def _context(self, user_id: str, event: Event) -> PushContext:
        counts = await self.storage.push_actions.unread_counts(user_id)
        unread = sum(c.notifications for threads in counts.values() for c in threads.values())
        room_name, alias = await room_name_and_alias(self.storage, event.room_id)
        return PushContext(
            user_id=user_id,
            unread_count=unread,
            sender_display_name=await member_display_name(
                self.storage, event.room_id, event.sender
            ),
            room_name=room_name,
            room_alias=alias,
        )


def pusher_json(pusher: Pusher) -> dict[str, Any]:
    """A pusher as GET /pushers shows it."""
    shown: dict[str, Any] = {
        "pushkey": pusher.pushkey,
        "kind": pusher.kind,
        "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang,
        "data": pusher.data,
    }
    if pusher.profile_tag is not None:
        shown["profile_tag"] = pusher.profile_tag
    if pusher.kind in WEBPUSH_KINDS:
        shown["activated"] = pusher.activated
    return shown


def _ack_relevant(data: Mapping[str, Any]) -> tuple[Any, Any]:
    return data.get("url"), data.get("auth")


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise MatrixError(400, Codes.MISSING_PARAM, f"'{name}' is required")
    return value


def build_pusher_pool(config: HomeServerConfig, reactor: Any, storage: Storage,
                      clock: Clock, mailer: Mailer | None) -> PusherPool:
    """The pool as the config says: one outbound client (ip_range_* apply; certificates
    checked against the system CA bundle, no redirects), Web Push if enabled."""
    http = HttpClient.from_config(config, reactor, tls_policy=system_trust_policy(), retries=0)
    webpush = None
    if config.webpush is not None:
        key = load_vapid_key(config.webpush.vapid_private_key_path)
        webpush = WebPushDelivery(http, key, config.webpush.vapid_contact)
    email = EmailDigests(storage, mailer, config.public_baseurl) if mailer else None
    return PusherPool(
        storage, clock, GatewayDelivery(http), webpush,
        email=email,
        email_delay_ms=config.email.notif_delay_before_mail_ms if config.email else 0,
        enabled=config.push.enabled,
        include_content=config.push.include_content,
        initial_backoff_s=config.push.retry_initial_backoff_ms / 1000,
        max_backoff_s=config.push.retry_max_backoff_ms / 1000,
    )
