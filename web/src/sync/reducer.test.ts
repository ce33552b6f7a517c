import { describe, expect, it } from "vitest";
import type { SyncResponse } from "../api/types";
import type { RoomRecord } from "../store/schema";
import { event, stateEvent } from "../test/fakeServer";
import { affectedRoomIds, emptyRoom, reduceSync } from "./reducer";

const ME = "@me:example.org";
const none = new Map<string, RoomRecord>();

describe("reduceSync", () => {
  it("turns a join with state and timeline into a room, members and a timeline write", () => {
    const response: SyncResponse = {
      next_batch: "s2",
      rooms: {
        join: {
          "!r:example.org": {
            summary: { "m.heroes": ["@bob:example.org"], "m.joined_member_count": 2 },
            state: {
              events: [
                stateEvent("m.room.create", "", { creator: "@bob:example.org" }),
                stateEvent("m.room.name", "", { name: "Old name" }),
                stateEvent("m.room.member", "@bob:example.org", {
                  membership: "join",
                  displayname: "Bob",
                }),
              ],
            },
            timeline: {
              limited: false,
              prev_batch: "p1",
              events: [
                stateEvent("m.room.member", ME, { membership: "join" }, { sender: ME, origin_server_ts: 500 }),
                stateEvent("m.room.name", "", { name: "General" }, { origin_server_ts: 600 }),
                event("$m1", { origin_server_ts: 1000 }),
                event("$m2", {
                  sender: ME,
                  origin_server_ts: 2000,
                  unsigned: { transaction_id: "txn-1" },
                }),
              ],
            },
          },
        },
      },
    };
    const writes = reduceSync(response, ME, none);
    expect(writes.syncToken).toBe("s2");
    expect(writes.rooms).toHaveLength(1);
    const room = writes.rooms[0]!;
    expect(room).toMatchObject({
      roomId: "!r:example.org",
      membership: "join",
      name: "General", // the timeline's state comes after the state block
      heroes: ["@bob:example.org"],
      joinedCount: 2,
      lastActivity: 2000,
    });
    expect(room.roomType).toBeUndefined();
    expect(writes.members).toEqual([
      { roomId: "!r:example.org", userId: "@bob:example.org", membership: "join", displayName: "Bob" },
      { roomId: "!r:example.org", userId: ME, membership: "join" },
    ]);
    expect(writes.timelines).toHaveLength(1);
    expect(writes.timelines[0]).toMatchObject({ roomId: "!r:example.org", limited: false, prevBatch: "p1" });
    expect(writes.timelines[0]!.events.map((e) => e.event_id).slice(-2)).toEqual(["$m1", "$m2"]);
    // Our own event came back with its transaction_id: its outbox entry is confirmed.
    expect(writes.confirmedTxnIds).toEqual(["txn-1"]);
    expect(writes.deletedRooms).toEqual([]);
  });

  it("only confirms transaction ids of our own events", () => {
    const response: SyncResponse = {
      next_batch: "s3",
      rooms: {
        join: {
          "!r:x": {
            timeline: { events: [event("$e", { sender: "@other:x", unsigned: { transaction_id: "t" } })] },
          },
        },
      },
    };
    expect(reduceSync(response, ME, none).confirmedTxnIds).toEqual([]);
  });

  it("deletes rooms we left, unless we joined again in the same response", () => {
    const response: SyncResponse = {
      next_batch: "s4",
      rooms: {
        leave: { "!gone:x": { timeline: { events: [] } }, "!back:x": {} },
        join: { "!back:x": { timeline: { events: [event("$1")] } } },
      },
    };
    const writes = reduceSync(response, ME, none);
    expect(writes.deletedRooms).toEqual(["!gone:x"]);
    expect(writes.rooms.map((r) => r.roomId)).toEqual(["!back:x"]);
    expect(affectedRoomIds(response).sort()).toEqual(["!back:x", "!back:x", "!gone:x"].sort());
  });

  it("records an invite from its stripped state: name, type, inviter, direct", () => {
    const response: SyncResponse = {
      next_batch: "s5",
      rooms: {
        invite: {
          "!inv:x": {
            invite_state: {
              events: [
                { type: "m.room.create", state_key: "", sender: "@bob:x", content: { type: "m.space" } },
                { type: "m.room.name", state_key: "", sender: "@bob:x", content: { name: "Bob's server" } },
                {
                  type: "m.room.member",
                  state_key: ME,
                  sender: "@bob:x",
                  content: { membership: "invite", is_direct: true },
                },
              ],
            },
          },
        },
      },
    };
    const writes = reduceSync(response, ME, none);
    expect(writes.rooms).toEqual([
      {
        ...emptyRoom("!inv:x", "invite"),
        roomType: "m.space",
        name: "Bob's server",
        inviter: "@bob:x",
        isDirectInvite: true,
      },
    ]);
    expect(writes.members).toEqual([{ roomId: "!inv:x", userId: ME, membership: "invite" }]);
    expect(writes.timelines).toEqual([]);
  });

  it("marks a limited timeline, so the store drops the gap", () => {
    const response: SyncResponse = {
      next_batch: "s6",
      rooms: {
        join: { "!r:x": { timeline: { limited: true, prev_batch: "p9", events: [event("$new")] } } },
      },
    };
    const previous = new Map([["!r:x", { ...emptyRoom("!r:x", "join"), name: "Kept" }]]);
    const writes = reduceSync(response, ME, previous);
    expect(writes.timelines).toEqual([
      { roomId: "!r:x", events: [event("$new")], limited: true, prevBatch: "p9" },
    ]);
    // What the gap does not touch stays: the room's name from before.
    expect(writes.rooms[0]!.name).toBe("Kept");
  });

  it("treats every timeline of an initial sync as replacing what was stored", () => {
    const response: SyncResponse = {
      next_batch: "s1",
      rooms: { join: { "!r:x": { timeline: { limited: false, events: [event("$a")] } } } },
    };
    expect(reduceSync(response, ME, none, { initial: true }).timelines[0]!.limited).toBe(true);
  });

  it("follows a space's children and a room's parents, additions and removals", () => {
    const space = "!space:x";
    const first: SyncResponse = {
      next_batch: "s7",
      rooms: {
        join: {
          [space]: {
            state: {
              events: [
                stateEvent("m.room.create", "", { type: "m.space" }),
                stateEvent("m.space.child", "!general:x", { via: ["x"], order: "a" }),
                stateEvent("m.space.child", "!random:x", { via: ["x"] }),
              ],
            },
          },
          "!general:x": {
            state: { events: [stateEvent("m.space.parent", space, { via: ["x"], canonical: true })] },
          },
        },
      },
    };
    const writes = reduceSync(first, ME, none);
    const spaceRecord = writes.rooms.find((r) => r.roomId === space)!;
    expect(spaceRecord.roomType).toBe("m.space");
    expect(spaceRecord.children).toEqual({
      "!general:x": { via: ["x"], order: "a" },
      "!random:x": { via: ["x"] },
    });
    const general = writes.rooms.find((r) => r.roomId === "!general:x")!;
    expect(general.parents).toEqual({ [space]: { via: ["x"], canonical: true } });

    // Later: one child removed (empty content), one added; the earlier record is the base.
    const second: SyncResponse = {
      next_batch: "s8",
      rooms: {
        join: {
          [space]: {
            timeline: {
              events: [
                stateEvent("m.space.child", "!random:x", {}),
                stateEvent("m.space.child", "!dev:x", { via: ["x", "y"] }),
              ],
            },
          },
        },
      },
    };
    const next = reduceSync(second, ME, new Map([[space, spaceRecord]]));
    expect(next.rooms[0]!.children).toEqual({
      "!general:x": { via: ["x"], order: "a" },
      "!dev:x": { via: ["x", "y"] },
    });
    expect(next.rooms[0]!.roomType).toBe("m.space");
    // The reducer is pure: the record it was given is untouched.
    expect(spaceRecord.children["!random:x"]).toBeDefined();
  });

  it("keeps the unread counts, who else types, and our own read receipt", () => {
    const response: SyncResponse = {
      next_batch: "s3",
      rooms: {
        join: {
          "!r:x": {
            unread_notifications: { notification_count: 3, highlight_count: 1 },
            ephemeral: {
              events: [
                { type: "m.typing", content: { user_ids: ["@bob:x", ME] } },
                {
                  type: "m.receipt",
                  content: {
                    "$old": { "m.read": { "@bob:x": { ts: 1 } } },
                    "$seen": { "m.read": { [ME]: { ts: 2 } } },
                  },
                },
              ],
            },
          },
        },
      },
    };
    const [room] = reduceSync(response, ME, none).rooms;
    expect(room).toMatchObject({ notificationCount: 3, highlightCount: 1, typing: ["@bob:x"], readUpTo: "$seen" });

    // A later sync with the counts cleared (after our receipt) and nobody typing.
    const cleared: SyncResponse = {
      next_batch: "s4",
      rooms: {
        join: {
          "!r:x": {
            unread_notifications: { notification_count: 0, highlight_count: 0 },
            ephemeral: { events: [{ type: "m.typing", content: { user_ids: [] } }] },
          },
        },
      },
    };
    const [after] = reduceSync(cleared, ME, new Map([["!r:x", room!]])).rooms;
    expect(after).toMatchObject({ notificationCount: 0, highlightCount: 0, typing: [], readUpTo: "$seen" });
    // Without unread_notifications or m.typing, what we knew stays.
    const quiet = reduceSync({ next_batch: "s5", rooms: { join: { "!r:x": {} } } }, ME, new Map([["!r:x", room!]]));
    expect(quiet.rooms[0]).toMatchObject({ notificationCount: 3, typing: ["@bob:x"] });
  });

  it("keeps global account data (m.direct)", () => {
    const response: SyncResponse = {
      next_batch: "s9",
      account_data: { events: [{ type: "m.direct", content: { "@bob:x": ["!dm:x"] } }] },
    };
    expect(reduceSync(response, ME, none).accountData).toEqual([
      { type: "m.direct", content: { "@bob:x": ["!dm:x"] } },
    ]);
  });
});
