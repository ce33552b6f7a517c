import { describe, expect, it } from "vitest";
import type { OutboxRecord, TimelineRecord } from "../store/schema";
import { event } from "../test/fakeServer";
import type { RoomEvent } from "../api/types";
import { timelineItems } from "./model";
import { editContent, foldRelations, reactionContent, replyContent, stripReplyFallback } from "./relations";

const ME = "@me:x";
const BOB = "@bob:x";
const stored = (events: RoomEvent[]): TimelineRecord[] =>
  events.map((e, i) => ({ roomId: "!r:x", order: i + 1, eventId: e.event_id, event: e }));
const outboxEntry = (txnId: string, eventType: string, content: Record<string, unknown>, redacts?: string): OutboxRecord => ({
  id: 1,
  txnId,
  roomId: "!r:x",
  eventType,
  content,
  createdAt: 1_700_000_000_500,
  status: "pending",
  attempts: 0,
  ...(redacts ? { redacts } : {}),
});
const messages = (items: ReturnType<typeof timelineItems>) => items.filter((i) => i.kind === "message");

describe("foldRelations", () => {
  it("applies the latest edit by the original sender only", () => {
    const original = event("$m", { sender: BOB });
    const edit1 = event("$e1", { sender: BOB, origin_server_ts: 2, content: editContent("one", "$m") });
    const edit2 = event("$e2", { sender: BOB, origin_server_ts: 3, content: editContent("two", "$m") });
    const forged = event("$e3", { sender: ME, origin_server_ts: 4, content: editContent("forged", "$m") });
    const folded = foldRelations([original, edit2, edit1, forged].map((e) => ({ event: e })), ME);
    expect(folded.edits.get("$m")).toEqual({ msgtype: "m.text", body: "two" });
  });

  it("counts reactions per key, once per sender, knows ours, and drops redacted ones", () => {
    const target = event("$m");
    const r1 = event("$r1", { type: "m.reaction", sender: BOB, content: reactionContent("$m", "👍") });
    const r1again = event("$r1b", { type: "m.reaction", sender: BOB, content: reactionContent("$m", "👍") });
    const r2 = event("$r2", { type: "m.reaction", sender: ME, content: reactionContent("$m", "👍") });
    const r3 = event("$r3", { type: "m.reaction", sender: ME, content: reactionContent("$m", "🎉") });
    const undo = event("$x", { type: "m.room.redaction", sender: ME, redacts: "$r3", content: {} });
    const folded = foldRelations([target, r1, r1again, r2, r3, undo].map((e) => ({ event: e })), ME);
    expect(folded.reactions.get("$m")).toEqual([{ key: "👍", count: 2, senders: [BOB, ME], mine: { eventId: "$r2" } }]);
    expect(folded.redacted.has("$r3")).toBe(true);
  });
});

describe("timelineItems with relations", () => {
  it("shows edits as edited, hides relation events, marks deleted messages", () => {
    const items = messages(
      timelineItems(
        stored([
          event("$a", { sender: BOB, content: { msgtype: "m.text", body: "helo" } }),
          event("$edit", { sender: BOB, content: editContent("hello", "$a") }),
          event("$b", { sender: BOB }),
          event("$red", { type: "m.room.redaction", sender: BOB, content: { redacts: "$b" } }),
          event("$c", { sender: BOB, content: { body: "" }, unsigned: { redacted_because: {} } }),
        ]),
        [],
        [],
        ME,
        new Map(),
      ),
    );
    expect(items.map((i) => i.kind === "message" && [i.event.event_id, i.body, i.edited ?? false, i.redacted ?? false])).toEqual([
      ["$a", "hello", true, false],
      ["$b", "", false, true],
      ["$c", "", false, true],
    ]);
  });

  it("applies what waits in the outbox: a reaction, an edit and a delete of ours", () => {
    const items = messages(
      timelineItems(
        stored([event("$mine", { sender: ME, content: { msgtype: "m.text", body: "old" } }), event("$other", { sender: ME })]),
        [],
        [
          outboxEntry("t1", "m.reaction", reactionContent("$mine", "❤️")),
          outboxEntry("t2", "m.room.message", editContent("new", "$mine")),
          outboxEntry("t3", "m.room.redaction", {}, "$other"),
        ],
        ME,
        new Map(),
      ),
    );
    expect(items).toHaveLength(2);
    const [mine, other] = items;
    expect(mine).toMatchObject({ body: "new", edited: true, reactions: [{ key: "❤️", count: 1, mine: { txnId: "t1" } }] });
    expect(other).toMatchObject({ redacted: true });
  });

  it("quotes the message replied to, without the fallback", () => {
    const reply = replyContent("> <@bob:x> hi\n\nhello back", "$a");
    const items = messages(
      timelineItems(
        stored([event("$a", { sender: BOB, content: { body: "hi" } }), event("$b", { sender: ME, content: reply }), event("$c", { content: replyContent("?", "$gone") })]),
        [],
        [],
        ME,
        new Map(),
      ),
    );
    expect(items[1]).toMatchObject({ body: "hello back", replyTo: { eventId: "$a", sender: BOB, body: "hi" } });
    expect(items[2]).toMatchObject({ replyTo: { eventId: "$gone" } });
  });

  it("strips only a leading quote", () => {
    expect(stripReplyFallback("> a\n> b\n\nreply")).toBe("reply");
    expect(stripReplyFallback("plain > text")).toBe("plain > text");
  });
});
