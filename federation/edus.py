"""EDUs: typing, receipts and to-device messages between servers, both ways.

Inbound, each EDU type has a handler that checks the origin speaks only for its own users and
hands the data to the core service. Outbound, the core services tell us of local changes and we
queue an EDU for every other server in the room (or the target user's server).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from federation.acl import origin_allowed
from federation.device_lists import DeviceListFederation
from federation.joins import servers_in_room
from homeserver.ephemeral.common import joined_rooms, run_in_background
from homeserver.ephemeral.presence import UserPresence
from homeserver.identifiers import is_valid_user_id, server_of
from storage.receipts import Receipt

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

RECEIPT_TYPES = ("m.read",)


class EduHandlers:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        self.server_name = hs.server_name

    def register(self) -> None:
        """Wires the inbound handlers and the outbound observers."""
        handlers = self.hs.federation_transactions.edu_handlers
        handlers["m.typing"] = self.on_typing
        handlers["m.receipt"] = self.on_receipt
        handlers["m.direct_to_device"] = self.hs.e2ee.to_device.receive_remote
        handlers["m.presence"] = self.on_presence
        self.hs.ephemeral.presence.local_change_observers.append(self.presence_changed)
        self.hs.ephemeral.typing.local_change_observers.append(self.typing_changed)
        self.hs.ephemeral.receipts.local_receipt_observers.append(self.receipt_made)
        self.hs.e2ee.to_device.remote_relay = self.relay_to_device
        # Device lists and keys of end-to-end encryption: m.device_list_update,
        # m.signing_key_update, and asking other servers for their users' keys.
        DeviceListFederation(self.hs).register()

    # -- inbound --------------------------------------------------------------------------------

    async def on_typing(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id, typing = (
            content.get("room_id"), content.get("user_id"), content.get("typing")
        )
        if not (isinstance(room_id, str) and _from_origin(user_id, origin)
                and isinstance(typing, bool)):
            return
        if not await origin_allowed(self.hs.storage, origin, room_id):
            return
        await self.hs.ephemeral.typing.set_remote_typing(user_id, room_id, typing)

    async def on_receipt(self, origin: str, content: dict[str, Any]) -> None:
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            if not await origin_allowed(self.hs.storage, origin, room_id):
                continue  # the spec: all of a room's receipts go when its ACL denies the origin
            for receipt_type, by_user in by_type.items():
                if receipt_type not in RECEIPT_TYPES or not isinstance(by_user, dict):
                    continue
                for user_id, receipt in by_user.items():
                    await self._one_receipt(origin, room_id, receipt_type, user_id, receipt)

    async def _one_receipt(
        self, origin: str, room_id: str, receipt_type: str, user_id: str, receipt: Any
    ) -> None:
        if not _from_origin(user_id, origin) or not isinstance(receipt, dict):
            return
        event_ids = receipt.get("event_ids")
        data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
        if not isinstance(event_ids, list) or not event_ids or not isinstance(event_ids[0], str):
            return
        ts = data.get("ts") if isinstance(data.get("ts"), int) else self.hs.clock.time_msec()
        thread_id = data.get("thread_id") if isinstance(data.get("thread_id"), str) else None
        await self.hs.ephemeral.receipts.put_remote_receipt(
            user_id, room_id, receipt_type, event_ids[0], thread_id, ts
        )

    async def on_presence(self, origin: str, content: dict[str, Any]) -> None:
        pushes = content.get("push")
        for push in pushes if isinstance(pushes, list) else []:
            if not isinstance(push, dict) or not _from_origin(push.get("user_id"), origin):
                continue
            ago = push.get("last_active_ago")
            status = push.get("status_msg")
            await self.hs.ephemeral.presence.set_remote(
                push["user_id"],
                str(push.get("presence")),
                status if isinstance(status, str) else None,
                ago if isinstance(ago, int) and not isinstance(ago, bool) else None,
            )

    # -- outbound -------------------------------------------------------------------------------

    def presence_changed(self, presence: UserPresence) -> None:
        run_in_background("federating presence", self._presence_to_rooms(presence))

    async def _presence_to_rooms(self, presence: UserPresence) -> None:
        content = presence.content(self.hs.clock.time_msec())
        push = {"user_id": presence.user_id, **content}
        destinations: set[str] = set()
        for room_id in await joined_rooms(self.hs.storage, presence.user_id):
            snapshot = await self.hs.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                destinations |= servers_in_room(snapshot.memberships)
        for destination in sorted(destinations - {self.server_name}):
            await self.hs.federation_sender.send_edu(destination, "m.presence", {"push": [push]})

    def typing_changed(self, room_id: str, user_id: str, typing: bool) -> None:
        content = {"room_id": room_id, "user_id": user_id, "typing": typing}
        run_in_background("federating typing", self._to_room(room_id, "m.typing", content))

    def receipt_made(self, receipt: Receipt) -> None:
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id is not None:
            data["thread_id"] = receipt.thread_id
        content = {
            receipt.room_id: {
                receipt.receipt_type: {
                    receipt.user_id: {"event_ids": [receipt.event_id], "data": data}
                }
            }
        }
        run_in_background("federating a receipt",
                          self._to_room(receipt.room_id, "m.receipt", content))

    async def relay_to_device(self, destination: str, content: dict[str, Any]) -> None:
        await self.hs.federation_sender.send_edu(destination, "m.direct_to_device", content)

    async def _to_room(self, room_id: str, edu_type: str, content: dict[str, Any]) -> None:
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        if snapshot is None:
            return
        for destination in sorted(servers_in_room(snapshot.memberships) - {self.server_name}):
            await self.hs.federation_sender.send_edu(destination, edu_type, content)


def _from_origin(user_id: Any, origin: str) -> bool:
    """A server may only speak for its own users."""
    return isinstance(user_id, str) and is_valid_user_id(user_id) and server_of(user_id) == origin
