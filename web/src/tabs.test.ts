// Two tabs of one browser: two Stores on the same database, talking over BroadcastChannel
// (Node has it), with an in-memory stand-in for navigator.locks.

import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "./api/client";
import { ChatSession } from "./session";
import { Store, type ChangeKind } from "./store/store";
import type { SyncStatus } from "./sync/loop";
import { Leadership, type LocksLike } from "./tabs";
import { FakeHomeserver, freshDbName } from "./test/fakeServer";
import { ME, ROOM } from "./test/fixtures";

/** Web Locks in one process: requests for a name are granted one after another, in order;
 *  one aborted while waiting is rejected when its turn comes. */
class FakeLocks implements LocksLike {
  private tails = new Map<string, Promise<unknown>>();

  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const mine = previous.then(() => {
      if (options.signal?.aborted) throw new DOMException("Aborted", "AbortError");
      return callback();
    });
    this.tails.set(name, mine.catch(() => undefined));
    return mine;
  }
}

const SESSION: Session = { baseUrl: "https://hs.example.org", userId: ME, accessToken: "tok", deviceId: "DEV" };
const stores: Store[] = [];
const sessions: ChatSession[] = [];

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.stop();
  for (const store of stores.splice(0)) store.close();
});

async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("condition never held");
}

async function openTab(name: string): Promise<Store> {
  const store = await Store.open(name);
  stores.push(store);
  return store;
}

/** A tab of ME on store `name`, with the paths it requested. */
async function chatTab(name: string, server: FakeHomeserver, locks: LocksLike) {
  const store = await openTab(name);
  // The paths this tab asked for.
  const paths: string[] = [];
  const fetch: typeof server.fetch = (input, init) => {
    paths.push(decodeURIComponent(new URL(input).pathname));
    return server.fetch(input, init);
  };
  const session = new ChatSession(store, SESSION, fetch, locks);
  sessions.push(session);
  const statuses: SyncStatus[] = [];
  session.onStatus((status) => statuses.push(status));
  const requested = (part: string) => paths.filter((p) => p.includes(part)).length;
  return { store, session, statuses, requested };
}

/** Two tabs of ME on one store, one server (whose /sync takes a little while, as a long poll
 *  would) and one lock manager; neither started. */
async function twoTabs() {
  const name = freshDbName();
  const server = new FakeHomeserver();
  server.onRequest = async (request) => {
    if (request.path.endsWith("/sync")) await new Promise((resolve) => setTimeout(resolve, 20));
  };
  const locks = new FakeLocks();
  return { server, first: await chatTab(name, server, locks), second: await chatTab(name, server, locks) };
}

describe("tabs", () => {
  it("tells a tab what another tab wrote to the shared store", async () => {
    const name = freshDbName();
    const first = await openTab(name);
    const second = await openTab(name);
    const heard: [ChangeKind, boolean][] = [];
    second.subscribe((kind, fromOtherTab) => heard.push([kind, fromOtherTab]));

    await first.addOutbox({
      txnId: "t1",
      roomId: ROOM,
      eventType: "m.room.message",
      content: { msgtype: "m.text", body: "from the first tab" },
      createdAt: 1,
      status: "pending",
      attempts: 0,
    });
    await until(() => heard.length > 0);
    expect(heard).toEqual([["outbox", true]]);
    expect((await second.listOutbox()).map((e) => e.content["body"])).toEqual(["from the first tab"]);
  });

  it("lets one tab sync; a message written in another is sent once, by the leader", async () => {
    const { server, first: leader, second: follower } = await twoTabs();
    leader.session.start();
    await until(() => leader.session.status === "online");

    follower.session.start();
    // The follower asked for the leader's state instead of syncing itself.
    await until(() => follower.statuses.includes("online"));
    expect(follower.session.isLeader).toBe(false);

    await follower.session.sendText(ROOM, "written in the second tab");
    await until(() => server.sent.length === 1);
    await until(async () => (await follower.store.listOutbox()).length === 0);
    expect(server.sent.map((e) => (e.content as { body: string }).body)).toEqual(["written in the second tab"]);
    expect(leader.requested("/send/")).toBe(1);
    expect(follower.requested("/send/")).toBe(0);
    expect(follower.requested("/sync")).toBe(0);
    expect(follower.session.sync.isRunning).toBe(false);
  });

  it("hands the lead to a waiting tab when the leading tab stops", async () => {
    const { first, second } = await twoTabs();
    first.session.start();
    second.session.start();
    await until(() => first.session.status === "online");
    expect(second.session.isLeader).toBe(false);

    expect(second.requested("/sync")).toBe(0);
    await first.session.stop();
    await until(() => second.session.isLeader && second.session.status === "online");
    expect(second.requested("/sync")).toBeGreaterThan(0);
    expect(second.session.sync.isRunning).toBe(true);
    // The stopping tab's "stopped" is not passed on as the network's state.
    expect(second.statuses).not.toContain("stopped");
  });

  it("leads at once where the browser has no Web Locks", () => {
    const leadership = new Leadership("x", null);
    let led = false;
    leadership.start(() => {
      led = true;
    });
    expect(led).toBe(true);
    expect(leadership.isLeader).toBe(true);
    leadership.stop();
    expect(leadership.isLeader).toBe(false);
  });
});
