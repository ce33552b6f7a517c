// What the screens show, derived from store records: pure functions, no React.

import type { JsonObject, RoomEvent } from "../api/types";
import type { MemberRecord, OutboxAttachment, OutboxRecord, RoomRecord, TimelineRecord } from "../store/schema";
import { foldRelations, isRelationOnly, relatesTo, stripReplyFallback, type ReactionSummary } from "./relations";

export const HOME = "home";
/** The Friends view of Home, selected in place of a room. */
export const FRIENDS = "friends";

export function isSpace(room: RoomRecord): boolean {
  return room.roomType === "m.space";
}

/** User IDs → the DM rooms with them, from the m.direct account data. */
export function directRoomIds(mDirect: Record<string, unknown> | undefined): Map<string, string> {
  const rooms = new Map<string, string>(); // room ID → the other user
  for (const [userId, ids] of Object.entries(mDirect ?? {})) {
    if (!Array.isArray(ids)) continue;
    for (const id of ids) if (typeof id === "string") rooms.set(id, userId);
  }
  return rooms;
}

export function localpart(userId: string): string {
  return userId.startsWith("@") ? userId.slice(1).split(":")[0] ?? userId : userId;
}

export function memberName(userId: string, members: Map<string, MemberRecord>): string {
  return members.get(userId)?.displayName ?? localpart(userId);
}

/** The spec's room naming: name, alias, else the other people in it. */
export function roomName(
  room: RoomRecord,
  me: string,
  members: Map<string, MemberRecord> = new Map(),
  dmUser?: string,
): string {
  if (room.name) return room.name;
  if (room.canonicalAlias) return room.canonicalAlias;
  if (dmUser) return memberName(dmUser, members);
  const heroes = room.heroes.filter((h) => h !== me);
  if (heroes.length > 0) return heroes.map((h) => memberName(h, members)).join(", ");
  if (room.membership === "invite" && room.inviter) return localpart(room.inviter);
  return "Empty room";
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name);
}

export interface Sidebar {
  spaces: RoomRecord[];
  /** Rooms of no joined space, that are not DMs. */
  homeRooms: RoomRecord[];
  directs: RoomRecord[];
  /** Invites to servers, channels and group rooms (DM invites are friend requests). */
  invites: RoomRecord[];
}

/** An invite to a direct chat: the inviter said `is_direct`, or our m.direct lists the room. */
export function isDirectInvite(room: RoomRecord, directs: Map<string, string>): boolean {
  return room.membership === "invite" && (room.isDirectInvite === true || directs.has(room.roomId));
}

export function sidebar(rooms: RoomRecord[], directs: Map<string, string>): Sidebar {
  const joined = rooms.filter((r) => r.membership === "join");
  const spaces = joined.filter(isSpace);
  const inSpace = new Set<string>();
  for (const space of spaces) for (const child of Object.keys(space.children)) inSpace.add(child);
  const joinedIds = new Set(joined.map((r) => r.roomId));
  const plain = joined.filter((r) => !isSpace(r));
  return {
    spaces: spaces.sort((a, b) => (a.name ?? "").localeCompare(b.name ?? "")),
    homeRooms: plain
      .filter((r) => !directs.has(r.roomId))
      .filter((r) => !inSpace.has(r.roomId) && !Object.keys(r.parents).some((p) => joinedIds.has(p)))
      .sort(byActivity),
    directs: plain.filter((r) => directs.has(r.roomId)).sort(byActivity),
    invites: rooms.filter((r) => r.membership === "invite" && !isDirectInvite(r, directs)),
  };
}

// -- friends ---------------------------------------------------------------------------------------

export interface Friend {
  userId: string;
  /** The DM to open: the most recently active joined one with them. */
  roomId: string;
  lastActivity?: number;
}

export interface FriendRequest {
  room: RoomRecord;
  /** Who asked (the inviter, else the user m.direct names for the room). */
  userId: string | undefined;
}

export interface Friends {
  friends: Friend[];
  requests: FriendRequest[];
}

/**
 * The Friends view: the people we have a joined DM with (m.direct), one entry each, by recent
 * activity; and the pending DM invites, as friend requests.
 */
export function friendsOf(rooms: RoomRecord[], directs: Map<string, string>, me: string): Friends {
  const best = new Map<string, Friend>();
  for (const room of rooms) {
    const userId = directs.get(room.roomId);
    if (!userId || userId === me || room.membership !== "join" || isSpace(room)) continue;
    const known = best.get(userId);
    if (!known || (room.lastActivity ?? 0) > (known.lastActivity ?? 0)) {
      const friend: Friend = { userId, roomId: room.roomId };
      if (room.lastActivity !== undefined) friend.lastActivity = room.lastActivity;
      best.set(userId, friend);
    }
  }
  const friends = [...best.values()].sort(
    (a, b) => (b.lastActivity ?? 0) - (a.lastActivity ?? 0) || a.userId.localeCompare(b.userId),
  );
  const requests = rooms
    .filter((r) => isDirectInvite(r, directs))
    .map((room) => ({ room, userId: room.inviter ?? directs.get(room.roomId) }));
  return { friends, requests };
}

// -- leaving a server ------------------------------------------------------------------------------

/**
 * The rooms to leave with a server: its joined channels (children of the space, or rooms that
 * name it as parent), except those that are also in another joined space we stay in.
 */
export function channelsToLeave(space: RoomRecord, rooms: RoomRecord[]): RoomRecord[] {
  const otherSpaces = rooms.filter((r) => isSpace(r) && r.membership === "join" && r.roomId !== space.roomId);
  const otherIds = new Set(otherSpaces.map((s) => s.roomId));
  const keptByOthers = (room: RoomRecord) =>
    otherSpaces.some((s) => room.roomId in s.children) || Object.keys(room.parents).some((p) => otherIds.has(p));
  return rooms
    .filter((r) => r.membership === "join" && !isSpace(r))
    .filter((r) => r.roomId in space.children || space.roomId in r.parents)
    .filter((r) => !keptByOthers(r))
    .sort(byName0);
}

function byActivity(a: RoomRecord, b: RoomRecord): number {
  return (b.lastActivity ?? 0) - (a.lastActivity ?? 0);
}

/** The joined channels of a space, in the space's order, then by name. */
export function channelsOf(space: RoomRecord, rooms: RoomRecord[]): RoomRecord[] {
  const byId = new Map(rooms.map((r) => [r.roomId, r]));
  const channels: { room: RoomRecord; order: string; name: string }[] = [];
  for (const [childId, child] of Object.entries(space.children)) {
    const room = byId.get(childId);
    if (room && room.membership === "join" && !isSpace(room)) {
      channels.push({ room, order: child.order ?? "\uffff", name: room.name ?? "" });
    }
  }
  channels.sort((a, b) => (a.order === b.order ? a.name.localeCompare(b.name) : a.order < b.order ? -1 : 1));
  return channels.map((c) => c.room);
}

/** The joined space a room is a channel of (the first by name), else Home. */
export function spaceOfRoom(roomId: string, rooms: RoomRecord[]): string {
  const spaces = rooms.filter((r) => isSpace(r) && r.membership === "join").sort(byName0);
  return spaces.find((space) => roomId in space.children)?.roomId ?? HOME;
}

function byName0(a: RoomRecord, b: RoomRecord): number {
  return (a.name ?? "").localeCompare(b.name ?? "");
}

// -- the timeline ----------------------------------------------------------------------------------

export type TimelineItem =
  | { kind: "day"; key: string; label: string }
  | {
      kind: "message";
      key: string;
      event: RoomEvent;
      /** Not yet confirmed by the server. */
      pending?: "pending" | "failed";
      error?: string;
      txnId?: string;
      /** A pending image or file not uploaded yet: the file itself, for a local preview. */
      attachment?: OutboxAttachment;
      /** Same sender as the message before, within a few minutes: no header. */
      continued: boolean;
      /** What to show: the latest edit's content if edited, the reply fallback removed. */
      body: string;
      edited?: boolean;
      redacted?: boolean;
      reactions?: ReactionSummary[];
      replyTo?: { eventId: string; sender?: string; body?: string };
    }
  | { kind: "notice"; key: string; text: string; ts: number };

const SHOWN_STATE: Record<string, (e: RoomEvent, who: string) => string | undefined> = {
  "m.room.member": (e, who) => {
    const membership = e.content["membership"];
    const previous = e.unsigned?.prev_content?.["membership"];
    if (membership === "join" && previous !== "join") return `${who} joined`;
    if (membership === "leave" && e.state_key === e.sender) return `${who} left`;
    if (membership === "invite") return `${who} was invited`;
    if (membership === "ban") return `${who} was banned`;
    return undefined;
  },
  "m.room.name": (e, who) => `${who} named the channel “${String(e.content["name"] ?? "")}”`,
  "m.room.topic": (e, who) => `${who} set the topic: ${String(e.content["topic"] ?? "")}`,
  "m.room.create": (_e, who) => `${who} created this room`,
};

export function timelineItems(
  stored: TimelineRecord[],
  older: RoomEvent[],
  outbox: OutboxRecord[],
  me: string,
  members: Map<string, MemberRecord>,
  locale?: string,
): TimelineItem[] {
  const seen = new Set<string>();
  const events: { event: RoomEvent; pending?: OutboxRecord }[] = [];
  for (const event of [...older, ...stored.map((s) => s.event)]) {
    if (seen.has(event.event_id)) continue;
    seen.add(event.event_id);
    events.push({ event });
  }
  for (const entry of outbox) {
    const event: RoomEvent = {
      event_id: `~${entry.txnId}`,
      type: entry.eventType,
      sender: me,
      origin_server_ts: entry.createdAt,
      content: entry.content,
    };
    if (entry.redacts !== undefined) event.redacts = entry.redacts;
    events.push({ event, pending: entry });
  }
  const relations = foldRelations(
    events.map(({ event, pending }) => (pending ? { event, txnId: pending.txnId } : { event })),
    me,
  );
  const byId = new Map(events.map(({ event }) => [event.event_id, event]));
  const items: TimelineItem[] = [];
  let lastDay = "";
  let lastSender = "";
  let lastTs = 0;
  for (const { event, pending } of events) {
    if (isRelationOnly(event)) continue;
    const day = dayKey(event.origin_server_ts);
    if (day !== lastDay) {
      items.push({ kind: "day", key: `day-${day}`, label: dayLabel(event.origin_server_ts, locale) });
      lastDay = day;
      lastSender = "";
    }
    if (event.type === "m.room.message") {
      const continued = lastSender === event.sender && event.origin_server_ts - lastTs < 5 * 60_000;
      const redacted = relations.redacted.has(event.event_id);
      const edit = relations.edits.get(event.event_id);
      const item: TimelineItem = {
        kind: "message",
        key: event.event_id,
        event,
        continued,
        body: redacted ? "" : displayBody(edit ?? event.content),
      };
      if (redacted) item.redacted = true;
      else {
        if (edit) item.edited = true;
        const reactions = relations.reactions.get(event.event_id);
        if (reactions) item.reactions = reactions;
        const parentId = relatesTo(event).inReplyTo;
        if (parentId) {
          const parent = byId.get(parentId);
          item.replyTo = parent
            ? {
                eventId: parentId,
                sender: parent.sender,
                body: relations.redacted.has(parentId)
                  ? "Message deleted"
                  : displayBody(relations.edits.get(parentId) ?? parent.content),
              }
            : { eventId: parentId };
        }
      }
      if (pending) {
        item.pending = pending.status;
        item.txnId = pending.txnId;
        if (pending.error) item.error = pending.error;
        if (pending.attachment) item.attachment = pending.attachment;
      }
      items.push(item);
      lastSender = event.sender;
      lastTs = event.origin_server_ts;
    } else if (event.state_key !== undefined) {
      const describe = SHOWN_STATE[event.type];
      const who = memberName(event.type === "m.room.member" ? event.state_key : event.sender, members);
      const text = describe?.(event, who);
      if (text) items.push({ kind: "notice", key: event.event_id, text, ts: event.origin_server_ts });
      lastSender = "";
    }
  }
  return items;
}

function displayBody(content: JsonObject): string {
  const body = content["body"];
  return typeof body === "string" ? stripReplyFallback(body) : "";
}

// -- unread counts ----------------------------------------------------------------------------------

export interface Unread {
  count: number;
  highlight: number;
}

export function unreadOf(rooms: RoomRecord[]): Unread {
  let count = 0;
  let highlight = 0;
  for (const room of rooms) {
    count += room.notificationCount ?? 0;
    highlight += room.highlightCount ?? 0;
  }
  return { count, highlight };
}

/** Badges of the rail: Home (DMs and rooms of no space) and each space (its joined channels). */
export function railUnread(side: Sidebar, rooms: RoomRecord[]): Map<string, Unread> {
  const badges = new Map<string, Unread>([[HOME, unreadOf([...side.directs, ...side.homeRooms])]]);
  for (const space of side.spaces) badges.set(space.roomId, unreadOf(channelsOf(space, rooms)));
  return badges;
}

function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function dayLabel(ts: number, locale?: string, now = Date.now()): string {
  const key = dayKey(ts);
  if (key === dayKey(now)) return "Today";
  if (key === dayKey(now - 86_400_000)) return "Yesterday";
  return new Date(ts).toLocaleDateString(locale, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}

export function timeLabel(ts: number, locale?: string): string {
  return new Date(ts).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** The token to page back from: the oldest stored event that has one (the view dedupes). */
export function backToken(stored: TimelineRecord[]): string | undefined {
  return stored.find((s) => s.tokenBefore !== undefined)?.tokenBefore;
}

export function reachedStart(stored: TimelineRecord[], older: RoomEvent[]): boolean {
  return [...older, ...stored.map((s) => s.event)].some((e) => e.type === "m.room.create");
}

/** "Bob is typing…" for the users in `typing` (others only). */
export function typingText(typing: string[] | undefined, members: Map<string, MemberRecord>): string {
  const names = (typing ?? []).map((id) => memberName(id, members));
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return "Several people are typing…";
}
