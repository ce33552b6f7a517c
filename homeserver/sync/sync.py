"""/sync: what changed for a user between two stream tokens.

The work of an incremental sync is bounded by the rooms that changed, not by how many events
happened: each room's newest position is known in memory, and a room's timeline is read newest
first with a LIMIT, so a token days old costs the same as one a second old. Older events are
reached through `prev_batch` and /messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.ignored_users import IgnoredUsers, without_ignored
from homeserver.relations.threads import MAIN_THREAD
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.filtering import EventFilter, SyncFilter
from homeserver.sync.notifier import Notifier
from homeserver.sync.render import EventRenderer
from homeserver.sync.sources import SyncContext, SyncExtras
from homeserver.sync.tokens import MAX_POSITION, StreamToken, encode_pagination_token
from push.rules_service import PUSH_RULES_TYPE, PushRulesService
from storage.push_actions import UnreadCounts
from storage.state import StateKey, StateMap
from storage.store import Storage

# Stripped state shown with an invite, so the invitee can tell what they are invited to.
INVITE_STATE_TYPES = (
    "m.room.create",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.encryption",
)
HERO_COUNT = 5


@dataclass
class SyncRequest:
    user_id: str
    device_id: str | None
    since: StreamToken | None
    sync_filter: SyncFilter
    timeout_ms: int = 0
    full_state: bool = False


@dataclass
class SyncResult:
    next_batch: StreamToken
    joined: dict[str, dict[str, Any]] = field(default_factory=dict)
    invited: dict[str, dict[str, Any]] = field(default_factory=dict)
    left: dict[str, dict[str, Any]] = field(default_factory=dict)
    knocked: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_data: list[dict[str, Any]] = field(default_factory=list)
    extras: SyncExtras = field(default_factory=SyncExtras)

    def is_empty(self) -> bool:
        return not (
            self.joined
            or self.invited
            or self.left
            or self.knocked
            or self.account_data
            or self.extras.has_news()
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "next_batch": self.next_batch.encode(),
            "rooms": {
                "join": self.joined,
                "invite": self.invited,
                "leave": self.left,
                "knock": self.knocked,
            },
            "account_data": {"events": self.account_data},
            "presence": {"events": self.extras.presence},
            "to_device": {"events": self.extras.to_device},
            "device_lists": {
                "changed": sorted(self.extras.device_lists_changed),
                "left": sorted(self.extras.device_lists_left),
            },
        }
        body.update(self.extras.top_level)
        return body


class SyncHandler:
    def __init__(
        self,
        storage: Storage,
        notifier: Notifier,
        clock: Clock,
        *,
        ignored_users: IgnoredUsers | None = None,
        push_rules: PushRulesService | None = None,
    ) -> None:
        self.storage = storage
        # An initial sync always carries the user's push rules, written or not (clients
        # read them from there).
        self.push_rules = push_rules
        self.notifier = notifier
        self.clock = clock
        self.renderer = EventRenderer(storage, clock)
        self.ignored_users = ignored_users or IgnoredUsers(storage)

    async def sync(self, request: SyncRequest) -> SyncResult:
        """Answers at once if anything changed since the token, else waits up to the timeout."""
        deadline = self.clock.time() + request.timeout_ms / 1000
        while True:
            now = self.notifier.current_token()
            since = request.since
            if since is not None and not request.full_state:
                capped = since.capped_at(now)
                if not await self._may_have_news(request.user_id, request.device_id, capped):
                    # A re-armed long-poll usually has nothing to build: skip straight to waiting.
                    remaining = deadline - self.clock.time()
                    if remaining <= 0:
                        # Built once, at the end: the answer carries the fields sent even
                        # without news (the device's one-time key counts are required).
                        return await self._build(request, now)
                    await self.notifier.wait_for_change(request.user_id, remaining, now)
                    continue
            result = await self._build(request, now)
            remaining = deadline - self.clock.time()
            if since is None or request.full_state or not result.is_empty():
                return result
            if remaining <= 0:
                return result
            await self.notifier.wait_for_change(request.user_id, remaining, now)

    async def _may_have_news(self, user_id: str, device_id: str | None, since: StreamToken) -> bool:
        """False only when, by the in-memory stream positions, nothing changed for the user."""
        if self.storage.account_data.changes.changed_since(user_id, since.account_data):
            return True
        for source in self.notifier.sources:
            if await source.may_have_news(user_id, device_id, getattr(since, source.stream)):
                return True
        if self.storage.persister.membership_changes.changed_since(user_id, since.events):
            return True
        positions = self.storage.events.room_positions
        for room_id in await self.storage.state.get_rooms_for_user(user_id):
            position = positions.get(room_id)
            if position is None or position > since.events:
                return True
        return False

    async def _build(self, request: SyncRequest, now: StreamToken) -> SyncResult:
        since = request.since.capped_at(now) if request.since else None
        result = SyncResult(next_batch=now)
        memberships = dict(await self.storage.state.get_rooms_for_user(request.user_id))
        changes = await self._membership_changes(request.user_id, since, now)
        account_data = await self.storage.account_data.get_changed(
            request.user_id, since.account_data if since else 0, now.account_data
        )
        global_data = account_data.get("", {})
        if since is None and self.push_rules is not None and PUSH_RULES_TYPE not in global_data:
            global_data[PUSH_RULES_TYPE] = await self.push_rules.ruleset_json(request.user_id)
        result.account_data = _account_data_events(global_data, request.sync_filter.account_data)
        joined_rooms = [
            room_id
            for room_id, membership in memberships.items()
            if membership == "join" and request.sync_filter.allows_room(room_id)
        ]
        context = SyncContext(request, since, now, joined_rooms, result.extras)
        for source in self.notifier.sources:
            await source.add_to_sync(context)
        # A source may hold its stream back (to-device sends at most 100 messages at once).
        result.next_batch = context.now
        forgotten: set[str] | None = None
        for room_id, membership in memberships.items():
            if not request.sync_filter.allows_room(room_id):
                continue
            room_account_data = account_data.get(room_id)
            if membership == "join":
                section = await self._joined_room(
                    request, room_id, since, now, changes, room_account_data, result.extras
                )
                if section is not None:
                    result.joined[room_id] = section
            elif membership == "invite" and (since is None or room_id in changes):
                # Invites from users this user ignores are never sent (spec: Ignoring Users).
                if await self.ignored_users.hides_invite(request.user_id, room_id):
                    continue
                result.invited[room_id] = await self._invited_room(request.user_id, room_id)
            elif membership == "knock" and (since is None or room_id in changes):
                # Knocks carry the same stripped state as invites (spec: Stripped state).
                stripped = await self._invited_room(request.user_id, room_id)
                result.knocked[room_id] = {"knock_state": stripped["invite_state"]}
            elif membership in ("leave", "ban"):
                if not (
                    (since is None and request.sync_filter.include_leave)
                    or (since is not None and room_id in changes)
                ):
                    continue
                if forgotten is None:
                    forgotten = await self.storage.rooms.get_forgotten(request.user_id)
                if room_id in forgotten:
                    continue
                section = await self._left_room(request, room_id, since, changes)
                if section is not None:
                    result.left[room_id] = section
        if result.joined:
            # One query for every room's counts, and none for a sync without joined rooms.
            unread = await self.storage.push_actions.unread_counts(request.user_id)
            per_thread = request.sync_filter.timeline.unread_thread_notifications
            for room_id, section in result.joined.items():
                section.update(_unread_fields(unread.get(room_id, {}), per_thread))
        return result

    async def _render(self, request: SyncRequest, events: list[Event]) -> list[dict[str, Any]]:
        """Events as this sync's filter asks for them, without room_id (the section says it)."""
        return await self.renderer.render(
            events,
            device_id=request.device_id,
            with_room_id=False,
            event_fields=request.sync_filter.event_fields,
            event_format=request.sync_filter.event_format,
            user_id=request.user_id,
        )

    async def _membership_changes(
        self, user_id: str, since: StreamToken | None, now: StreamToken
    ) -> dict[str, list[tuple[str, int]]]:
        """room_id -> [(membership, position)] of the user's membership events in the window."""
        if since is None:
            return {}
        if not self.storage.persister.membership_changes.changed_since(user_id, since.events):
            return {}
        rows = await self.storage.db.run(
            "membership_changes",
            lambda txn: txn.query(
                "SELECT room_id, membership, stream_ordering FROM room_memberships"
                " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ?"
                " ORDER BY stream_ordering",
                (user_id, since.events, now.events),
            ),
        )
        changes: dict[str, list[tuple[str, int]]] = {}
        for room_id, membership, position in rows:
            changes.setdefault(room_id, []).append((membership, position))
        return changes

    async def _joined_room(
        self,
        request: SyncRequest,
        room_id: str,
        since: StreamToken | None,
        now: StreamToken,
        changes: dict[str, list[tuple[str, int]]],
        room_account_data: dict[str, dict[str, Any]] | None,
        extras: SyncExtras,
    ) -> dict[str, Any] | None:
        newly_joined = since is not None and any(m == "join" for m, _ in changes.get(room_id, []))
        room_changed = since is None or (
            await self.storage.events.get_room_position(room_id) > since.events
        )
        ephemeral = extras.ephemeral.get(room_id)
        if not (room_changed or room_account_data or ephemeral or request.full_state):
            return None
        after = since.events if since is not None else -MAX_POSITION
        timeline = await self._timeline(request, room_id, after, now.events)
        full_state = since is None or request.full_state or newly_joined
        state = await self._state(request, room_id, timeline, since, now.events, full_state)
        events = await self._render(request, timeline.events)
        if since is not None and not (events or state or room_account_data or ephemeral):
            if not request.full_state:
                return None
        section: dict[str, Any] = {
            "timeline": timeline.to_json(events),
            "state": {"events": state},
            "account_data": {
                "events": _account_data_events(
                    room_account_data, request.sync_filter.room_account_data
                )
            },
            "ephemeral": {"events": ephemeral or []},
            "summary": await self._summary(room_id, request.user_id),
        }
        return section

    async def _timeline(
        self, request: SyncRequest, room_id: str, after: int, upto: int
    ) -> Timeline:
        timeline_filter = request.sync_filter.timeline
        limit = request.sync_filter.timeline_limit
        if timeline_filter.allows_nothing() or limit == 0:
            return Timeline([], limited=upto > after, prev_position=upto)
        events: list[Event] = []
        upper = upto
        limited = False
        # Read newest first, a page at a time, until `limit` events survive the filters; the
        # common unfiltered case is one query of limit + 1 rows.
        for _ in range(5):
            page = await self.storage.events.get_timeline(
                room_id,
                after=after,
                upto=upper,
                limit=limit + 1,
                newest_first=True,
                event_filter=timeline_filter.sql_pushdown(),
            )
            more_in_db = len(page) > limit
            page = page[:limit] if more_in_db else page
            kept = [e for e in page if timeline_filter.allows(e)]
            kept = await VisibilityFilter(self.storage, request.user_id).filter(kept)
            # Events from ignored users are left out, their state events excepted.
            kept = without_ignored(kept, await self.ignored_users.get(request.user_id))
            events.extend(kept)
            if len(events) >= limit:
                limited = more_in_db or len(events) > limit
                events = events[:limit]
                break
            if not more_in_db:
                break
            upper = (page[-1].stream_ordering or 0) - 1
            limited = True
        else:
            limited = True
        events.reverse()
        prev_position = (events[0].stream_ordering or 0) - 1 if events else upto
        return Timeline(events, limited=limited, prev_position=prev_position)

    async def _state(
        self,
        request: SyncRequest,
        room_id: str,
        timeline: Timeline,
        since: StreamToken | None,
        now_position: int,
        full_state: bool,
    ) -> list[dict[str, Any]]:
        """State between `since` and the start of the timeline (all of it for a full sync)."""
        if not full_state and not timeline.limited:
            return []
        at_start = await self._state_before_timeline(room_id, timeline, now_position)
        if full_state or since is None:
            wanted = dict(at_start)
        else:
            at_since = await self.storage.state.get_state_at_position(room_id, since.events) or {}
            wanted = {k: v for k, v in at_start.items() if at_since.get(k) != v}
        wanted = _filter_state_keys(
            wanted, request.sync_filter.state, timeline, request.user_id, at_start
        )
        in_timeline = {e.event_id for e in timeline.events}
        ids = [eid for eid in wanted.values() if eid not in in_timeline]
        found = await self.storage.events.get_events(ids)
        state_events = [
            found[eid]
            for eid in ids
            if eid in found and request.sync_filter.state.allows(found[eid])
        ]
        return await self._render(request, state_events)

    async def _state_before_timeline(
        self, room_id: str, timeline: Timeline, now_position: int
    ) -> StateMap:
        if timeline.events:
            group = timeline.events[0].state_group_before
            return await self.storage.state.get_state_group(group) if group is not None else {}
        return await self.storage.state.get_state_at_position(room_id, now_position) or {}

    async def _summary(self, room_id: str, user_id: str) -> dict[str, Any]:
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None:
            return {}
        joined = [u for u, m in snapshot.memberships.items() if m == "join"]
        invited = [u for u, m in snapshot.memberships.items() if m == "invite"]
        summary: dict[str, Any] = {
            "m.joined_member_count": len(joined),
            "m.invited_member_count": len(invited),
        }
        if ("m.room.name", "") not in snapshot.state and (
            "m.room.canonical_alias",
            "",
        ) not in snapshot.state:
            summary["m.heroes"] = sorted(u for u in joined + invited if u != user_id)[:HERO_COUNT]
        return summary

    async def _invited_room(self, user_id: str, room_id: str) -> dict[str, Any]:
        snapshot = await self.storage.state.get_snapshot(room_id)
        assert snapshot is not None
        if ("m.room.create", "") not in snapshot.state:
            return await self._out_of_band_invite(user_id, snapshot.state)
        keys: list[StateKey] = [(t, "") for t in INVITE_STATE_TYPES]
        keys.append(("m.room.member", user_id))
        ids = [snapshot.state[k] for k in keys if k in snapshot.state]
        found = await self.storage.events.get_events(ids)
        stripped = [
            {
                "type": e.type,
                "state_key": e.state_key,
                "content": e.content,
                "sender": e.sender,
            }
            for e in (found[i] for i in ids if i in found)
        ]
        return {"invite_state": {"events": stripped}}

    async def _out_of_band_invite(self, user_id: str, state: StateMap) -> dict[str, Any]:
        """An invite from another server to a room we are not in: the room's stripped state
        as the inviting server described it, and the invite itself."""
        invite_id = state.get(("m.room.member", user_id))
        invite = await self.storage.events.get_event(invite_id) if invite_id else None
        described = await self.storage.rooms.get_invite_state(invite_id) if invite_id else None
        stripped = [
            {k: e[k] for k in ("type", "state_key", "content", "sender") if k in e}
            for e in described or []
            if isinstance(e, dict) and (e.get("type"), e.get("state_key")) != ("m.room.member",
                                                                                 user_id)
        ]
        if invite is not None:
            stripped.append({"type": invite.type, "state_key": invite.state_key,
                             "content": invite.content, "sender": invite.sender})
        return {"invite_state": {"events": stripped}}

    async def _left_room(
        self,
        request: SyncRequest,
        room_id: str,
        since: StreamToken | None,
        changes: dict[str, list[tuple[str, int]]],
    ) -> dict[str, Any] | None:
        """The room up to the user's leaving: they see nothing after it."""
        leave_position = await self._leave_position(request.user_id, room_id, changes)
        if leave_position is None:
            return None
        after = since.events if since is not None else -MAX_POSITION
        timeline = await self._timeline(request, room_id, after, leave_position)
        state = await self._state(
            request, room_id, timeline, since, leave_position, full_state=since is None
        )
        events = await self._render(request, timeline.events)
        return {
            "timeline": timeline.to_json(events),
            "state": {"events": state},
            "account_data": {"events": []},
        }

    async def _leave_position(
        self, user_id: str, room_id: str, changes: dict[str, list[tuple[str, int]]]
    ) -> int | None:
        for membership, position in reversed(changes.get(room_id, [])):
            if membership in ("leave", "ban"):
                return position
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None:
            return None
        event_id = snapshot.state.get(("m.room.member", user_id))
        event = await self.storage.events.get_event(event_id) if event_id else None
        return event.stream_ordering if event else None


@dataclass
class Timeline:
    events: list[Event]
    limited: bool
    prev_position: int

    def to_json(self, rendered: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "events": rendered,
            "limited": self.limited,
            "prev_batch": encode_pagination_token(self.prev_position),
        }


def _filter_state_keys(
    wanted: StateMap,
    state_filter: EventFilter,
    timeline: Timeline,
    user_id: str,
    at_start: StateMap,
) -> StateMap:
    """Applies the state filter's type rules and lazy-loading of members."""
    result = {k: v for k, v in wanted.items() if state_filter.allows_type(k[0])}
    if not state_filter.lazy_load_members:
        return result
    senders = {e.sender for e in timeline.events} | {user_id}
    result = {k: v for k, v in result.items() if k[0] != "m.room.member" or k[1] in senders}
    # Members of the timeline's senders come along even when unchanged, so the client can
    # show their names.
    for sender in senders:
        key = ("m.room.member", sender)
        if key in at_start and key not in result:
            result[key] = at_start[key]
    return result


def _unread_fields(by_thread: dict[str, UnreadCounts], per_thread: bool) -> dict[str, Any]:
    """`unread_notifications`, and with per_thread (the filter's unread_thread_notifications)
    the main timeline's counts there and each thread's in `unread_thread_notifications`."""

    def counts(values: list[UnreadCounts]) -> dict[str, int]:
        return {
            "notification_count": sum(c.notifications for c in values),
            "highlight_count": sum(c.highlights for c in values),
        }

    if not per_thread:
        return {"unread_notifications": counts(list(by_thread.values()))}
    main = [c for thread, c in by_thread.items() if thread == MAIN_THREAD]
    return {
        "unread_notifications": counts(main),
        "unread_thread_notifications": {
            thread: counts([c]) for thread, c in by_thread.items() if thread != MAIN_THREAD
        },
    }


def _account_data_events(
    data: dict[str, dict[str, Any]] | None, data_filter: EventFilter
) -> list[dict[str, Any]]:
    if not data:
        return []
    return [
        {"type": data_type, "content": content}
        for data_type, content in data.items()
        if data_filter.allows_type(data_type)
    ]
