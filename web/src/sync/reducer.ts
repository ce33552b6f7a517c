// The sync reducer: a /sync response (plus the records it touches) in, store writes out.
// Pure and synchronous, so it is tested without a network or a database, and so it can run
// inside the IndexedDB transaction that applies its result.

import type { BasicEvent, JsonObject, StrippedStateEvent, SyncResponse } from "../api/types";
import type { MemberRecord, RoomRecord } from "../store/schema";
import type { SyncWrites, TimelineWrite } from "../store/store";

export interface ReduceOptions {
  /** A sync without `since`: every room's timeline replaces what was stored. */
  initial?: boolean;
}

type StateLike = Pick<StrippedStateEvent, "type" | "state_key" | "content" | "sender">;

/** Every room a response mentions: the records the reducer needs to see. */
export function affectedRoomIds(response: SyncResponse): string[] {
  const rooms = response.rooms ?? {};
  return [
    ...Object.keys(rooms.join ?? {}),
    ...Object.keys(rooms.invite ?? {}),
    ...Object.keys(rooms.leave ?? {}),
  ];
}

export function emptyRoom(roomId: string, membership: RoomRecord["membership"]): RoomRecord {
  return { roomId, membership, children: {}, parents: {}, heroes: [] };
}

export function reduceSync(
  response: SyncResponse,
  userId: string,
  previous: ReadonlyMap<string, RoomRecord>,
  options: ReduceOptions = {},
): SyncWrites {
  const writes: SyncWrites = {
    syncToken: response.next_batch,
    rooms: [],
    deletedRooms: [],
    members: [],
    timelines: [],
    accountData: [],
    confirmedTxnIds: [],
  };
  const rooms = response.rooms ?? {};
  const joined = new Set(Object.keys(rooms.join ?? {}));
  const invited = new Set(Object.keys(rooms.invite ?? {}));

  for (const roomId of Object.keys(rooms.leave ?? {})) {
    // A room that we left and rejoined since the last sync is in `join` too: that one wins.
    if (!joined.has(roomId) && !invited.has(roomId)) writes.deletedRooms.push(roomId);
  }

  for (const [roomId, invite] of Object.entries(rooms.invite ?? {})) {
    if (joined.has(roomId)) continue;
    const room = cloneRoom(previous.get(roomId), roomId, "invite");
    for (const event of invite.invite_state?.events ?? []) {
      applyState(room, event);
      if (event.type === "m.room.member") {
        writes.members.push(memberRecord(roomId, event));
        if (event.state_key === userId && event.content["membership"] === "invite") {
          room.inviter = event.sender;
          room.isDirectInvite = event.content["is_direct"] === true;
        }
      }
    }
    writes.rooms.push(room);
  }

  for (const [roomId, join] of Object.entries(rooms.join ?? {})) {
    const room = cloneRoom(previous.get(roomId), roomId, "join");
    delete room.inviter;
    delete room.isDirectInvite;
    const summary = join.summary ?? {};
    if (summary["m.heroes"]) room.heroes = [...summary["m.heroes"]];
    if (summary["m.joined_member_count"] !== undefined) {
      room.joinedCount = summary["m.joined_member_count"];
    }
    if (summary["m.invited_member_count"] !== undefined) {
      room.invitedCount = summary["m.invited_member_count"];
    }
    const timelineEvents = join.timeline?.events ?? [];
    // State before the timeline first, then the timeline in order: the last word wins.
    for (const event of [...(join.state?.events ?? []), ...timelineEvents]) {
      if (event.state_key === undefined) continue;
      applyState(room, event as StateLike);
      if (event.type === "m.room.member") writes.members.push(memberRecord(roomId, event as StateLike));
    }
    for (const event of timelineEvents) {
      room.lastActivity = Math.max(room.lastActivity ?? 0, event.origin_server_ts ?? 0);
      const txnId = event.unsigned?.transaction_id;
      if (event.sender === userId && typeof txnId === "string") writes.confirmedTxnIds.push(txnId);
    }
    const unread = join.unread_notifications;
    if (unread?.notification_count !== undefined) room.notificationCount = unread.notification_count;
    if (unread?.highlight_count !== undefined) room.highlightCount = unread.highlight_count;
    applyEphemeral(room, join.ephemeral?.events ?? [], userId);
    const timeline: TimelineWrite = {
      roomId,
      events: timelineEvents,
      limited: options.initial === true || join.timeline?.limited === true,
    };
    if (join.timeline?.prev_batch) timeline.prevBatch = join.timeline.prev_batch;
    if (timeline.events.length > 0 || timeline.limited) writes.timelines.push(timeline);
    writes.rooms.push(room);
  }

  for (const event of response.account_data?.events ?? []) {
    writes.accountData.push({ type: event.type, content: event.content ?? {} });
  }
  return writes;
}

/** Typing notices and our own read receipt (ephemeral events: not in the timeline). */
function applyEphemeral(room: RoomRecord, events: BasicEvent[], userId: string): void {
  for (const event of events) {
    const content: JsonObject = event.content ?? {};
    if (event.type === "m.typing") {
      const ids = Array.isArray(content["user_ids"]) ? content["user_ids"] : [];
      room.typing = ids.filter((id): id is string => typeof id === "string" && id !== userId);
    } else if (event.type === "m.receipt") {
      for (const [eventId, receipts] of Object.entries(content)) {
        const read = isRecord(receipts) ? receipts["m.read"] : undefined;
        if (isRecord(read) && userId in read) room.readUpTo = eventId;
      }
    }
  }
}

function isRecord(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function cloneRoom(
  previous: RoomRecord | undefined,
  roomId: string,
  membership: RoomRecord["membership"],
): RoomRecord {
  if (!previous) return emptyRoom(roomId, membership);
  return {
    ...previous,
    membership,
    children: { ...previous.children },
    parents: { ...previous.parents },
    heroes: [...previous.heroes],
    ...(previous.typing ? { typing: [...previous.typing] } : {}),
  };
}

function memberRecord(roomId: string, event: StateLike): MemberRecord {
  const record: MemberRecord = {
    roomId,
    userId: event.state_key,
    membership: stringOf(event.content["membership"]) ?? "leave",
  };
  const displayName = stringOf(event.content["displayname"]);
  const avatarUrl = stringOf(event.content["avatar_url"]);
  if (displayName) record.displayName = displayName;
  if (avatarUrl) record.avatarUrl = avatarUrl;
  return record;
}

/** Folds one state event into the room record (the fields the UI shows). */
export function applyState(room: RoomRecord, event: StateLike): void {
  const content: JsonObject = event.content ?? {};
  switch (event.type) {
    case "m.room.create":
      setOrDelete(room, "roomType", stringOf(content["type"]));
      break;
    case "m.room.name":
      setOrDelete(room, "name", stringOf(content["name"]) || undefined);
      break;
    case "m.room.topic":
      setOrDelete(room, "topic", stringOf(content["topic"]) || undefined);
      break;
    case "m.room.canonical_alias":
      setOrDelete(room, "canonicalAlias", stringOf(content["alias"]) || undefined);
      break;
    case "m.room.avatar":
      setOrDelete(room, "avatarUrl", stringOf(content["url"]) || undefined);
      break;
    case "m.room.join_rules":
      setOrDelete(room, "joinRule", stringOf(content["join_rule"]));
      break;
    case "m.room.encryption":
      room.encrypted = true;
      break;
    case "m.space.child": {
      // A child with no (or an empty) `via` has been removed from the space.
      const via = viaOf(content);
      if (via.length > 0) {
        room.children[event.state_key] = { via, ...orderOf(content) };
      } else {
        delete room.children[event.state_key];
      }
      break;
    }
    case "m.space.parent": {
      const via = viaOf(content);
      if (via.length > 0) {
        room.parents[event.state_key] = { via, canonical: content["canonical"] === true };
      } else {
        delete room.parents[event.state_key];
      }
      break;
    }
  }
}

function setOrDelete<K extends keyof RoomRecord>(
  room: RoomRecord,
  key: K,
  value: RoomRecord[K] | undefined,
): void {
  if (value === undefined) delete room[key];
  else room[key] = value;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function viaOf(content: JsonObject): string[] {
  const via = content["via"];
  return Array.isArray(via) ? via.filter((v): v is string => typeof v === "string") : [];
}

function orderOf(content: JsonObject): { order?: string } {
  const order = content["order"];
  return typeof order === "string" ? { order } : {};
}
