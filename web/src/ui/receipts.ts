// When to send a read receipt: the room is open and visible, its newest event is on screen, and
// that event is one the server has delivered (not our local echo) and not yet marked read.

import type { RoomRecord, TimelineRecord } from "../store/schema";

export interface ReceiptInput {
  stored: TimelineRecord[];
  room: Pick<RoomRecord, "readUpTo" | "notificationCount">;
  me: string;
  /** The event we last sent a receipt for in this view: at most one per new event. */
  lastSent: string | undefined;
  /** The page is visible and focused. */
  visible: boolean;
  /** The timeline is scrolled to its newest message. */
  atBottom: boolean;
}

/** The event to mark read now, or undefined. */
export function receiptToSend({ stored, room, me, lastSent, visible, atBottom }: ReceiptInput): string | undefined {
  if (!visible || !atBottom) return undefined;
  let latest: TimelineRecord | undefined;
  for (let i = stored.length - 1; i >= 0 && !latest; i -= 1) {
    if (!stored[i]!.local) latest = stored[i];
  }
  // A local echo at the end: /sync will deliver the server's copy, then we decide.
  if (!latest || stored[stored.length - 1]!.local) return undefined;
  if (latest.eventId === room.readUpTo || latest.eventId === lastSent) return undefined;
  // Our own message marks the room read on its own; only counts left over need a receipt.
  if (latest.event.sender === me && !(room.notificationCount ?? 0)) return undefined;
  return latest.eventId;
}
