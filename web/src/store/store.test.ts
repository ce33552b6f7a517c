import { afterEach, describe, expect, it } from "vitest";
import type { RoomEvent, SyncResponse } from "../api/types";
import { affectedRoomIds, reduceSync } from "../sync/reducer";
import { event, freshDbName, stateEvent } from "../test/fakeServer";
import { Store, type ChangeKind } from "./store";

const ME = "@me:example.org";
const open: Store[] = [];

async function openStore(name: string, timelineLimit?: number): Promise<Store> {
  const store = await Store.open(name, timelineLimit === undefined ? {} : { timelineLimit });
  open.push(store);
  return store;
}

/** A "reload": the page goes away (the connection closes) and a new one opens the database. */
async function reload(store: Store, timelineLimit?: number): Promise<Store> {
  store.close();
  return openStore(store.name, timelineLimit);
}

async function apply(store: Store, response: SyncResponse, initial = false) {
  return store.applySync(affectedRoomIds(response), (previous) =>
    reduceSync(response, ME, previous, { initial }),
  );
}

function joinWith(roomId: string, events: RoomEvent[], extra: { limited?: boolean; prev_batch?: string; next?: string } = {}): SyncResponse {
  return {
    next_batch: extra.next ?? "s1",
    rooms: {
      join: {
        [roomId]: {
          timeline: { events, limited: extra.limited ?? false, prev_batch: extra.prev_batch },
        },
      },
    },
  };
}

const ids = (records: { eventId: string }[]) => records.map((r) => r.eventId);

afterEach(() => {
  for (const store of open.splice(0)) store.close();
});

describe("Store", () => {
  it("keeps the session and the sync token across a reload", async () => {
    let store = await openStore(freshDbName());
    const session = { baseUrl: "https://hs.example.org", userId: ME, accessToken: "tok", deviceId: "DEV" };
    await store.setSession(session);
    await apply(store, { next_batch: "s42" });
    store = await reload(store);
    expect(await store.getSession()).toEqual(session);
    expect(await store.getSyncToken()).toBe("s42");
  });

  it("keeps rooms, members and the timeline of a sync across a reload", async () => {
    let store = await openStore(freshDbName());
    await apply(store, {
      next_batch: "s1",
      rooms: {
        join: {
          "!r:x": {
            state: {
              events: [
                stateEvent("m.room.name", "", { name: "General" }),
                stateEvent("m.room.member", "@bob:x", { membership: "join", displayname: "Bob" }),
              ],
            },
            timeline: { events: [event("$1"), event("$2")], prev_batch: "p0" },
          },
        },
      },
    });
    store = await reload(store);
    expect(await store.listRooms()).toMatchObject([{ roomId: "!r:x", name: "General", membership: "join" }]);
    expect(await store.getMembers("!r:x")).toEqual([
      { roomId: "!r:x", userId: "@bob:x", membership: "join", displayName: "Bob" },
    ]);
    const timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$1", "$2"]);
    expect(timeline[0]!.tokenBefore).toBe("p0");
    expect(timeline[1]!.tokenBefore).toBeUndefined();
  });

  it("appends in order, skips events it has, and keeps only the newest N", async () => {
    const store = await openStore(freshDbName(), 5);
    await apply(store, joinWith("!r:x", [event("$1"), event("$2"), event("$3")]));
    await apply(store, joinWith("!r:x", [event("$3"), event("$4"), event("$5"), event("$6"), event("$7")], { next: "s2" }));
    expect(ids(await store.getTimeline("!r:x"))).toEqual(["$3", "$4", "$5", "$6", "$7"]);
    // Other rooms are not touched by the bound of one.
    await apply(store, joinWith("!other:x", [event("$o1")], { next: "s3" }));
    expect(ids(await store.getTimeline("!other:x"))).toEqual(["$o1"]);
    expect(ids(await store.getTimeline("!r:x"))).toHaveLength(5);
  });

  it("drops the stored timeline when a sync is limited (the gap)", async () => {
    const store = await openStore(freshDbName());
    await apply(store, joinWith("!r:x", [event("$1"), event("$2")]));
    await apply(store, joinWith("!r:x", [event("$9")], { limited: true, prev_batch: "gap", next: "s2" }));
    const timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$9"]);
    expect(timeline[0]!.tokenBefore).toBe("gap");
  });

  it("forgets a room we left: record, members and timeline", async () => {
    const store = await openStore(freshDbName());
    await apply(store, {
      next_batch: "s1",
      rooms: {
        join: {
          "!r:x": {
            state: { events: [stateEvent("m.room.member", "@bob:x", { membership: "join" })] },
            timeline: { events: [event("$1")] },
          },
        },
      },
    });
    await apply(store, { next_batch: "s2", rooms: { leave: { "!r:x": {} } } });
    expect(await store.listRooms()).toEqual([]);
    expect(await store.getMembers("!r:x")).toEqual([]);
    expect(await store.getTimeline("!r:x")).toEqual([]);
  });

  it("replaces a local echo with the server's copy at the server's position", async () => {
    const store = await openStore(freshDbName());
    await apply(store, joinWith("!r:x", [event("$1")]));
    await store.addOutbox({
      txnId: "t1", roomId: "!r:x", eventType: "m.room.message",
      content: { body: "mine" }, createdAt: 1, status: "pending", attempts: 1,
    });
    await store.confirmOutbox("t1", event("$mine", { room_id: "!r:x", sender: ME }));
    let timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$1", "$mine"]);
    expect(timeline[1]!.local).toBe(true);
    // /sync then says someone else spoke first, and delivers our event after it.
    await apply(store, joinWith("!r:x", [event("$2"), event("$mine", { sender: ME })], { next: "s2" }));
    timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$1", "$2", "$mine"]);
    expect(timeline[2]!.local).toBeUndefined();
  });

  it("keeps older pages within the bound, and their token only when the whole page fit", async () => {
    const store = await openStore(freshDbName(), 4);
    await apply(store, joinWith("!r:x", [event("$5"), event("$6")], { prev_batch: "p5" }));
    // /messages dir=b: newest first. "$5" is a duplicate of what we have.
    const kept = await store.prependEvents("!r:x", [event("$5"), event("$4"), event("$3")], "p3");
    expect(kept).toBe(2);
    let timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$3", "$4", "$5", "$6"]);
    expect(timeline[0]!.tokenBefore).toBe("p3");
    // Full now: nothing more is kept, and no token is moved.
    expect(await store.prependEvents("!r:x", [event("$2")], "p2")).toBe(0);
    timeline = await store.getTimeline("!r:x");
    expect(ids(timeline)).toEqual(["$3", "$4", "$5", "$6"]);
  });

  it("tells listeners only after the data is written", async () => {
    const store = await openStore(freshDbName());
    const seen: [ChangeKind, string | undefined][] = [];
    store.subscribe((kind) => {
      void store.getSyncToken().then((token) => seen.push([kind, token]));
    });
    await apply(store, { next_batch: "s7" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(seen).toEqual([["sync", "s7"]]);
  });

  it("clears everything at logout", async () => {
    const store = await openStore(freshDbName());
    await store.setSession({ baseUrl: "https://x", userId: ME, accessToken: "t", deviceId: "D" });
    await apply(store, joinWith("!r:x", [event("$1")]));
    await store.addOutbox({
      txnId: "t1", roomId: "!r:x", eventType: "m.room.message",
      content: {}, createdAt: 1, status: "pending", attempts: 0,
    });
    await store.clear();
    expect(await store.getSession()).toBeUndefined();
    expect(await store.getSyncToken()).toBeUndefined();
    expect(await store.listRooms()).toEqual([]);
    expect(await store.listOutbox()).toEqual([]);
    expect(await store.getTimeline("!r:x")).toEqual([]);
  });
});
