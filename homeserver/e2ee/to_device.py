"""Send-to-device messaging: /sendToDevice, and delivery through /sync.

A message stays stored until its device acknowledges it, which a device does by syncing with a
token at or past the message's position: a response that never arrived is answered again. A
sync carries at most MAX_PER_SYNC messages; the token it returns then stops at the last one sent,
so the rest come next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.clock import Clock
from homeserver.e2ee.keys import KeyService
from homeserver.errors import bad_json
from homeserver.identifiers import is_valid_user_id, server_of
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncContext
from storage.device_inbox import inbox_key
from storage.store import Storage

logger = logging.getLogger(__name__)

# The spec recommends 100.
MAX_PER_SYNC = 100
_TXN_SWEEP_INTERVAL_MS = 60 * 60 * 1000


class ToDeviceService:
    """The to-device stream as a /sync source; it also adds the syncing device's key counts."""

    stream = "to_device"

    def __init__(
        self,
        server_name: str,
        storage: Storage,
        notifier: Notifier,
        clock: Clock,
        keys: KeyService,
    ) -> None:
        self.server_name = server_name
        self.storage = storage
        self.inbox = storage.e2ee.inbox
        self.notifier = notifier
        self.clock = clock
        self.keys = keys
        # Devices whose inbox was read since start-up, and those with messages sent but not
        # yet acknowledged: only these (and devices with new messages) need the database.
        self._checked: set[str] = set()
        self._unacknowledged: set[str] = set()
        self._last_txn_sweep_ms = 0
        # (destination server, EDU content) -> None: relays messages for other servers' users
        # (set by server.py; without it they are dropped).
        self.remote_relay: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    def current_position(self) -> int:
        return self.inbox.stream.current

    async def send(
        self,
        sender: str,
        sender_device: str | None,
        event_type: str,
        txn_id: str,
        messages: Any,
    ) -> None:
        if not isinstance(messages, dict):
            raise bad_json("messages must be an object of user IDs to devices")
        queued: dict[tuple[str, str], dict[str, Any]] = {}
        remote: dict[str, dict[str, Any]] = {}
        for user_id, by_device in messages.items():
            if not isinstance(by_device, dict) or not all(
                isinstance(content, dict) for content in by_device.values()
            ):
                raise bad_json(f"messages[{user_id}] must map device IDs to message contents")
            if not is_valid_user_id(user_id):
                raise bad_json(f"{user_id!r} is not a user ID")
            if server_of(user_id) != self.server_name:
                remote.setdefault(server_of(user_id), {})[user_id] = by_device
                continue
            for device_id, content in await self._local_targets(user_id, by_device):
                queued[(user_id, device_id)] = {
                    "sender": sender,
                    "type": event_type,
                    "content": content,
                }
        now = self.clock.time_msec()
        position = await self.inbox.add_messages(
            (sender, sender_device or ""), event_type, txn_id, queued, now
        )
        if position is not None:
            self.notifier.wake_users({user_id for user_id, _ in queued})
            await self._relay(sender, sender_device or "", event_type, txn_id, remote)
        await self._maybe_sweep_txn_ids(now)

    async def _relay(
        self,
        sender: str,
        sender_device: str,
        event_type: str,
        txn_id: str,
        by_server: dict[str, dict[str, Any]],
    ) -> None:
        if not by_server:
            return
        if self.remote_relay is None:
            logger.warning("Dropping to-device messages for %s: no federation", sorted(by_server))
            return
        # The same for a retried request, so the receiving server can drop the repeat.
        message_id = hashlib.sha256(
            json.dumps([sender, sender_device, event_type, txn_id]).encode()
        ).hexdigest()[:32]
        for destination, messages in by_server.items():
            await self.remote_relay(
                destination,
                {"sender": sender, "type": event_type, "message_id": message_id,
                 "messages": messages},
            )

    async def receive_remote(self, origin: str, content: dict[str, Any]) -> None:
        """An m.direct_to_device EDU: messages from another server's user to ours."""
        sender = content.get("sender")
        event_type = content.get("type")
        message_id = content.get("message_id")
        messages = content.get("messages")
        if not (
            isinstance(sender, str) and is_valid_user_id(sender) and server_of(sender) == origin
            and isinstance(event_type, str) and isinstance(message_id, str)
            and isinstance(messages, dict)
        ):
            logger.info("Dropping a malformed to-device EDU from %s", origin)
            return
        queued: dict[tuple[str, str], dict[str, Any]] = {}
        for user_id, by_device in messages.items():
            if (
                not isinstance(user_id, str) or not is_valid_user_id(user_id)
                or server_of(user_id) != self.server_name or not isinstance(by_device, dict)
            ):
                continue
            contents = {d: c for d, c in by_device.items() if isinstance(c, dict)}
            for device_id, message in await self._local_targets(user_id, contents):
                queued[(user_id, device_id)] = {
                    "sender": sender, "type": event_type, "content": message,
                }
        if not queued:
            return
        now = self.clock.time_msec()
        # Keyed by the sending server, so a transaction it repeats queues nothing twice.
        position = await self.inbox.add_messages(
            (sender, f"federation:{origin}"), event_type, message_id, queued, now
        )
        if position is not None:
            self.notifier.wake_users({user_id for user_id, _ in queued})

    async def _local_targets(
        self, user_id: str, by_device: dict[str, dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """(device, content) for existing devices; "*" means every device, and a message
        naming a device explicitly wins over "*" for that device."""
        existing = [device.device_id for device in await self.storage.accounts.get_devices(user_id)]
        targets: dict[str, dict[str, Any]] = {}
        if "*" in by_device:
            targets = {device_id: by_device["*"] for device_id in existing}
        for device_id, content in by_device.items():
            if device_id != "*" and device_id in existing:
                targets[device_id] = content
        return list(targets.items())

    async def _maybe_sweep_txn_ids(self, now: int) -> None:
        if now - self._last_txn_sweep_ms < _TXN_SWEEP_INTERVAL_MS:
            return
        self._last_txn_sweep_ms = now
        try:
            await self.inbox.forget_old_txn_ids(now)
        except Exception:
            # Housekeeping: the next sweep will try again.
            logger.warning("Could not delete old to-device transaction IDs", exc_info=True)

    # The /sync source ----------------------------------------------------------------------------

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        if device_id is None:
            return False
        return self.inbox.changes.changed_since(inbox_key(user_id, device_id), since)

    async def add_to_sync(self, context: SyncContext) -> None:
        user_id, device_id = context.request.user_id, context.request.device_id
        if device_id is None:
            return
        context.extras.top_level.update(await self.keys.sync_fields(user_id, device_id))
        key = inbox_key(user_id, device_id)
        acknowledged = context.since.to_device if context.since is not None else 0
        if not (
            key not in self._checked
            or key in self._unacknowledged
            or self.inbox.changes.changed_since(key, acknowledged)
        ):
            return
        batch = await self.inbox.take_batch(
            user_id, device_id, acknowledged, context.now.to_device, MAX_PER_SYNC
        )
        self._checked.add(key)
        if batch.messages:
            self._unacknowledged.add(key)
        else:
            self._unacknowledged.discard(key)
        context.extras.to_device.extend(batch.messages)
        if batch.more:
            # The token must not acknowledge what this response leaves out.
            context.now = context.now.copy_with(to_device=batch.last_position)
