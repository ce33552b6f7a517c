// Relations between events, folded for display: edits (m.replace), redactions, reactions
// (m.annotation) and replies (m.in_reply_to). Pure: the events in, what each message shows out.

import type { JsonObject, RoomEvent } from "../api/types";

export interface ReactionSummary {
  key: string;
  count: number;
  senders: string[];
  /** Our own reaction with this key: its event (sent) or outbox txnId (not yet sent). */
  mine?: { eventId?: string; txnId?: string };
}

export interface Relations {
  redacted: Set<string>;
  /** Original event ID → the content that replaces it (the latest edit by the same sender). */
  edits: Map<string, JsonObject>;
  /** Target event ID → its reactions, in the order the keys first appeared. */
  reactions: Map<string, ReactionSummary[]>;
}

/** An event of the list, with the outbox txnId when it is not yet sent. */
export interface RelationInput {
  event: RoomEvent;
  txnId?: string;
}

export function relatesTo(event: RoomEvent): { relType?: string; eventId?: string; key?: string; inReplyTo?: string } {
  const relation = event.content["m.relates_to"];
  if (typeof relation !== "object" || relation === null) return {};
  const r = relation as JsonObject;
  const reply = r["m.in_reply_to"];
  const inReplyTo =
    typeof reply === "object" && reply !== null && typeof (reply as JsonObject)["event_id"] === "string"
      ? ((reply as JsonObject)["event_id"] as string)
      : undefined;
  return {
    relType: typeof r["rel_type"] === "string" ? r["rel_type"] : undefined,
    eventId: typeof r["event_id"] === "string" ? r["event_id"] : undefined,
    key: typeof r["key"] === "string" ? r["key"] : undefined,
    inReplyTo,
  };
}

export function redactedId(event: RoomEvent): string | undefined {
  if (event.type !== "m.room.redaction") return undefined;
  const inContent = event.content["redacts"];
  return event.redacts ?? (typeof inContent === "string" ? inContent : undefined);
}

/** Events that only change others (an edit, a reaction, a redaction): not rows of their own. */
export function isRelationOnly(event: RoomEvent): boolean {
  if (event.type === "m.reaction" || event.type === "m.room.redaction") return true;
  return event.type === "m.room.message" && relatesTo(event).relType === "m.replace";
}

export function foldRelations(inputs: RelationInput[], me: string): Relations {
  const redacted = new Set<string>();
  for (const { event } of inputs) {
    const target = redactedId(event);
    if (target) redacted.add(target);
    if (event.unsigned?.redacted_because !== undefined) redacted.add(event.event_id);
  }
  const senders = new Map(inputs.map(({ event }) => [event.event_id, event.sender]));
  const edits = new Map<string, { content: JsonObject; ts: number }>();
  const reactions = new Map<string, ReactionSummary[]>();
  for (const { event, txnId } of inputs) {
    if (redacted.has(event.event_id)) continue;
    const relation = relatesTo(event);
    if (!relation.eventId) continue;
    if (event.type === "m.room.message" && relation.relType === "m.replace") {
      const replacement = event.content["m.new_content"];
      // Only the original sender may edit; the latest edit wins (by time, outbox last).
      if (senders.get(relation.eventId) !== event.sender) continue;
      if (typeof replacement !== "object" || replacement === null) continue;
      const previous = edits.get(relation.eventId);
      if (!previous || event.origin_server_ts >= previous.ts) {
        edits.set(relation.eventId, { content: replacement as JsonObject, ts: event.origin_server_ts });
      }
    } else if (event.type === "m.reaction" && relation.relType === "m.annotation" && relation.key) {
      const list = reactions.get(relation.eventId) ?? [];
      let summary = list.find((s) => s.key === relation.key);
      if (!summary) {
        summary = { key: relation.key, count: 0, senders: [] };
        list.push(summary);
        reactions.set(relation.eventId, list);
      }
      if (summary.senders.includes(event.sender)) continue; // one per sender and key
      summary.senders.push(event.sender);
      summary.count += 1;
      if (event.sender === me) summary.mine = txnId ? { txnId } : { eventId: event.event_id };
    }
  }
  return {
    redacted,
    edits: new Map([...edits].map(([id, edit]) => [id, edit.content])),
    reactions,
  };
}

/** Drops the quoted fallback (`> <@user> ...` lines) older clients put in front of a reply. */
export function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith(">")) i += 1;
  if (lines[i] === "") i += 1;
  return lines.slice(i).join("\n");
}

// -- what the composer sends -------------------------------------------------------------------------

export function replyContent(text: string, replyTo: string): JsonObject {
  return { msgtype: "m.text", body: text, "m.relates_to": { "m.in_reply_to": { event_id: replyTo } } };
}

export function editContent(text: string, original: string): JsonObject {
  return {
    msgtype: "m.text",
    body: `* ${text}`,
    "m.new_content": { msgtype: "m.text", body: text },
    "m.relates_to": { rel_type: "m.replace", event_id: original },
  };
}

export function reactionContent(eventId: string, key: string): JsonObject {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } };
}
