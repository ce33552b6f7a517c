import { describe, expect, it } from "vitest";
import type { OutboxRecord, RoomRecord, TimelineRecord } from "../store/schema";
import { emptyRoom } from "../sync/reducer";
import { event, stateEvent } from "../test/fakeServer";
import { backToken, channelsOf, dayLabel, directRoomIds, roomName, sidebar, timelineItems } from "./model";

const ME = "@me:x";
const room = (id: string, extra: Partial<RoomRecord> = {}): RoomRecord => ({ ...emptyRoom(id, "join"), ...extra });
const stored = (events: ReturnType<typeof event>[]): TimelineRecord[] =>
  events.map((e, i) => ({ roomId: "!r:x", order: i + 1, eventId: e.event_id, event: e }));

describe("the sidebar", () => {
  it("puts spaces on the rail, their channels under them, and the rest in Home", () => {
    const rooms = [
      room("!space:x", { roomType: "m.space", name: "Guild", children: { "!b:x": { via: ["x"], order: "b" }, "!a:x": { via: ["x"], order: "a" }, "!notjoined:x": { via: ["x"] } } }),
      room("!a:x", { name: "alpha" }),
      room("!b:x", { name: "beta" }),
      room("!loose:x", { name: "loose" }),
      room("!dm:x", { heroes: ["@bob:x"] }),
      { ...emptyRoom("!inv:x", "invite"), inviter: "@carol:x" },
    ];
    const directs = directRoomIds({ "@bob:x": ["!dm:x"], "@junk": "not a list" });
    const side = sidebar(rooms, directs);
    expect(side.spaces.map((r) => r.roomId)).toEqual(["!space:x"]);
    expect(channelsOf(side.spaces[0]!, rooms).map((r) => r.name)).toEqual(["alpha", "beta"]);
    expect(side.homeRooms.map((r) => r.roomId)).toEqual(["!loose:x"]);
    expect(side.directs.map((r) => r.roomId)).toEqual(["!dm:x"]);
    expect(side.invites.map((r) => r.roomId)).toEqual(["!inv:x"]);
    expect(roomName(rooms[4]!, ME, new Map([["@bob:x", { roomId: "!dm:x", userId: "@bob:x", membership: "join", displayName: "Bob" }]]), "@bob:x")).toBe("Bob");
    expect(roomName(rooms[5]!, ME)).toBe("carol");
  });
});

describe("the timeline", () => {
  it("separates days, groups a sender's messages, and marks what is not sent yet", () => {
    const day1 = new Date(2024, 0, 1, 10, 0).getTime();
    const day2 = new Date(2024, 0, 2, 9, 0).getTime();
    const outbox: OutboxRecord[] = [
      { id: 1, txnId: "t1", roomId: "!r:x", eventType: "m.room.message", content: { body: "queued" }, createdAt: day2 + 60_000, status: "pending", attempts: 0 },
      { id: 2, txnId: "t2", roomId: "!r:x", eventType: "m.room.message", content: { body: "refused" }, createdAt: day2 + 120_000, status: "failed", attempts: 1, error: "Forbidden" },
    ];
    const items = timelineItems(
      stored([
        stateEvent("m.room.member", "@bob:x", { membership: "join" }, { origin_server_ts: day1 - 1000 }),
        event("$1", { origin_server_ts: day1 }),
        event("$2", { origin_server_ts: day1 + 60_000 }),
        event("$3", { origin_server_ts: day2, sender: ME }),
      ]),
      [],
      outbox,
      ME,
      new Map(),
      "en-GB",
    );
    expect(items.map((i) => (i.kind === "message" ? `${i.event.event_id}${i.continued ? "+" : ""}${i.pending ? `:${i.pending}` : ""}` : i.kind))).toEqual([
      "day", "notice", "$1", "$2+", "day", "$3", "~t1+:pending", "~t2+:failed",
    ]);
  });

  it("merges older pages with the stored timeline without repeating an event", () => {
    const items = timelineItems(stored([event("$2"), event("$3")]), [event("$1"), event("$2")], [], ME, new Map());
    expect(items.filter((i) => i.kind === "message").map((i) => i.key)).toEqual(["$1", "$2", "$3"]);
  });

  it("pages back from the oldest stored event that has a token", () => {
    const records = stored([event("$1"), event("$2"), event("$3")]);
    records[1]!.tokenBefore = "t2";
    records[2]!.tokenBefore = "t3";
    expect(backToken(records)).toBe("t2");
  });

  it("names days relative to today", () => {
    const now = new Date(2024, 5, 10, 12).getTime();
    expect(dayLabel(now - 3600_000, "en-GB", now)).toBe("Today");
    expect(dayLabel(now - 86_400_000, "en-GB", now)).toBe("Yesterday");
    expect(dayLabel(new Date(2024, 0, 1).getTime(), "en-GB", now)).toContain("2024");
  });
});
