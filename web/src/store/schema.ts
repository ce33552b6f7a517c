// The IndexedDB schema: what is kept on the device, so that the app opens and renders with no
// network, and so that nothing written offline is lost.

import type { DBSchema } from "idb";
import type { Session } from "../api/client";
import type { JsonObject, RoomEvent } from "../api/types";

export const DB_VERSION = 1;

export type Membership = "join" | "invite";

export interface SpaceChild {
  via: string[];
  order?: string;
}

export interface SpaceParent {
  via: string[];
  canonical?: boolean;
}

/** One room (or space) the user is in or invited to, with the state the UI needs. */
export interface RoomRecord {
  roomId: string;
  membership: Membership;
  /** `m.room.create`'s content.type: "m.space" for spaces ("servers"), absent for rooms. */
  roomType?: string;
  name?: string;
  topic?: string;
  canonicalAlias?: string;
  avatarUrl?: string;
  joinRule?: string;
  encrypted?: boolean;
  /** `m.space.child` state: children of a space, by room ID. */
  children: Record<string, SpaceChild>;
  /** `m.space.parent` state: the spaces this room says it belongs to. */
  parents: Record<string, SpaceParent>;
  /** From the sync summary, to name rooms that have no name. */
  heroes: string[];
  joinedCount?: number;
  invitedCount?: number;
  /** For invites: who invited us, and whether they meant a direct chat. */
  inviter?: string;
  isDirectInvite?: boolean;
  /** origin_server_ts of the newest event seen, to sort the room list. */
  lastActivity?: number;
  /** The server's unread counts (`unread_notifications` of /sync), for the badges. */
  notificationCount?: number;
  highlightCount?: number;
  /** The event our own m.read receipt is on, as the server last told us. */
  readUpTo?: string;
  /** Who else is typing (the last `m.typing` of the room). */
  typing?: string[];
}

export interface MemberRecord {
  roomId: string;
  userId: string;
  membership: string;
  displayName?: string;
  avatarUrl?: string;
}

/** One event of a room's recent timeline. `order` grows with time inside a room. */
export interface TimelineRecord {
  roomId: string;
  order: number;
  eventId: string;
  event: RoomEvent;
  /** A /messages `from` token for the events just before this one, where we know it. */
  tokenBefore?: string;
  /** Written from our own send's answer before /sync delivered it ("local echo"). */
  local?: boolean;
}

export type OutboxStatus = "pending" | "failed";

/** A message written by the user and not yet confirmed by the server. */
export interface OutboxRecord {
  /** Auto-increment key: the order in which the user wrote. */
  id?: number;
  /** Fixed when the entry is written, reused by every retry: the server dedupes on it. */
  txnId: string;
  roomId: string;
  eventType: string;
  content: JsonObject;
  createdAt: number;
  status: OutboxStatus;
  attempts: number;
  error?: string;
  /** For `m.room.redaction`: the event to redact (sent with PUT /redact, not /send). */
  redacts?: string;
  /** For an image or file: the file itself (IndexedDB keeps Blobs), until it is uploaded.
   *  The upload's mxc:// URI goes into `content.url` and the Blob is dropped, in one write. */
  attachment?: OutboxAttachment;
}

export interface OutboxAttachment {
  file: Blob;
  fileName: string;
}

export interface AccountDataRecord {
  type: string;
  content: JsonObject;
}

export interface MetaValues {
  session: Session;
  syncToken: string;
}

export interface MatrixDB extends DBSchema {
  meta: { key: string; value: unknown };
  rooms: { key: string; value: RoomRecord };
  members: { key: [string, string]; value: MemberRecord };
  timeline: {
    key: [string, number];
    value: TimelineRecord;
    indexes: { byEventId: string };
  };
  outbox: {
    key: number;
    value: OutboxRecord;
    indexes: { byTxnId: string; byRoom: string };
  };
  accountData: { key: string; value: AccountDataRecord };
}

export const STORE_NAMES = ["meta", "rooms", "members", "timeline", "outbox", "accountData"] as const;
