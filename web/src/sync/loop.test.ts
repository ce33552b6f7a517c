import { afterEach, describe, expect, it } from "vitest";
import { MatrixApi } from "../api/client";
import { Store } from "../store/store";
import { FakeHomeserver, event, freshDbName } from "../test/fakeServer";
import { SyncLoop, type Sleep, type SyncStatus } from "./loop";

const ME = "@me:example.org";
const open: Store[] = [];

afterEach(() => {
  for (const store of open.splice(0)) store.close();
});

async function setup(name = freshDbName(), server = new FakeHomeserver()) {
  const store = await Store.open(name);
  open.push(store);
  const api = new MatrixApi({ baseUrl: "https://hs.example.org", accessToken: "tok", fetch: server.fetch });
  return { store, api, server };
}

/** Waits until `check` holds, failing after a while. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("condition never held");
}

const syncRequests = (server: FakeHomeserver) =>
  server.requests.filter((r) => r.path === "/_matrix/client/v3/sync");

describe("SyncLoop", () => {
  it("starts without a token, then resumes from the stored one after a reload", async () => {
    const first = await setup();
    first.server.syncResponses.push({
      next_batch: "s1",
      rooms: { join: { "!r:x": { timeline: { events: [event("$1")] } } } },
    });
    const loop = new SyncLoop({ api: first.api, store: first.store, userId: ME });
    await loop.syncOnce();
    const [request] = syncRequests(first.server);
    expect(request!.query.get("since")).toBeNull();
    expect(request!.query.get("timeout")).toBe("0");
    expect(await first.store.getSyncToken()).toBe("s1");

    first.store.close();
    const second = await setup(first.store.name, first.server);
    // Before any network: the stored room and timeline are there to render.
    expect((await second.store.getTimeline("!r:x")).map((t) => t.eventId)).toEqual(["$1"]);
    const again = new SyncLoop({ api: second.api, store: second.store, userId: ME, timeoutMs: 25_000 });
    await again.syncOnce();
    const last = syncRequests(second.server).at(-1)!;
    expect(last.query.get("since")).toBe("s1");
    expect(last.query.get("timeout")).toBe("25000");
    expect(await second.store.getSyncToken()).toBe("s1+");
  });

  it("goes offline on network errors, backs off, and comes back online", async () => {
    const { store, api, server } = await setup();
    server.offline = true;
    const statuses: SyncStatus[] = [];
    const delays: number[] = [];
    const sleep: Sleep = async (ms) => {
      delays.push(ms);
      if (delays.length === 3) server.offline = false;
      await new Promise((resolve) => setTimeout(resolve, 1));
    };
    const loop = new SyncLoop({
      api, store, userId: ME, sleep, initialBackoffMs: 100, maxBackoffMs: 300,
      onStatus: (status) => statuses.push(status),
    });
    loop.start();
    await until(() => loop.status === "online");
    await loop.stop();
    expect(delays).toEqual([100, 200, 300]);
    expect(statuses.slice(0, 5)).toEqual(["connecting", "offline", "offline", "offline", "online"]);
    expect(statuses.at(-1)).toBe("stopped");
  });

  it("waits as long as the server asks when rate limited", async () => {
    const { store, api, server } = await setup();
    server.failNext("/sync", { status: 429, body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 5000 } });
    const delays: number[] = [];
    const loop = new SyncLoop({
      api, store, userId: ME, initialBackoffMs: 100,
      sleep: async (ms) => void delays.push(ms),
    });
    loop.start();
    await until(() => loop.status === "online");
    await loop.stop();
    expect(delays).toEqual([5000]);
  });

  it("stops, logged out, when the server no longer knows the token", async () => {
    const { store, api, server } = await setup();
    server.failNext("/sync", { status: 401, body: { errcode: "M_UNKNOWN_TOKEN", error: "Unknown token" } });
    const loop = new SyncLoop({ api, store, userId: ME, sleep: async () => undefined });
    loop.start();
    await until(() => loop.status === "loggedOut");
    expect(syncRequests(server)).toHaveLength(1);
  });

  it("starts over with an initial sync when the server refuses the stored since token", async () => {
    const { store, api, server } = await setup();
    const loop = new SyncLoop({ api, store, userId: ME, timeoutMs: 25_000, sleep: async () => undefined });
    await loop.syncOnce();
    expect(await store.getSyncToken()).toBe("s0+");
    server.failNext("/sync", { status: 400, body: { errcode: "M_INVALID_PARAM", error: "Invalid stream token" } });
    server.syncResponses.push({
      next_batch: "fresh",
      rooms: { join: { "!r:x": { timeline: { events: [event("$new")] } } } },
    });
    await loop.syncOnce();
    const [, refused, initial] = syncRequests(server);
    expect(refused!.query.get("since")).toBe("s0+");
    expect(initial!.query.get("since")).toBeNull();
    expect(initial!.query.get("timeout")).toBe("0");
    expect(await store.getSyncToken()).toBe("fresh");
    expect((await store.getTimeline("!r:x")).map((t) => t.eventId)).toEqual(["$new"]);

    // The loop goes on from the new token (a 404 is taken the same way).
    server.failNext("/sync", { status: 404, body: { errcode: "M_NOT_FOUND" } });
    loop.start();
    await until(() => loop.status === "online");
    await loop.stop();
    expect(syncRequests(server).slice(3, 5).map((r) => r.query.get("since"))).toEqual(["fresh", null]);
  });

  it("retries without since only once, and only for a refused request", async () => {
    const { store, api, server } = await setup();
    const loop = new SyncLoop({ api, store, userId: ME });
    await loop.syncOnce();
    // The initial sync is refused as well: the error is passed on (the loop backs off).
    server.failNext("/sync", { status: 400, body: { errcode: "M_UNKNOWN" } });
    server.failNext("/sync", { status: 400, body: { errcode: "M_UNKNOWN" } });
    await expect(loop.syncOnce()).rejects.toMatchObject({ status: 400 });
    expect(syncRequests(server).slice(1).map((r) => r.query.get("since"))).toEqual(["s0+", null]);
    expect(await store.getSyncToken()).toBe("s0+");
    // Rate limiting, server errors and network errors keep the token.
    for (const fault of [
      { status: 429, body: { errcode: "M_LIMIT_EXCEEDED" } },
      { status: 408, body: {} },
      { status: 500, body: { errcode: "M_UNKNOWN" } },
      "offline" as const,
    ]) {
      const before = syncRequests(server).length;
      server.failNext("/sync", fault);
      await expect(loop.syncOnce()).rejects.toBeDefined();
      expect(syncRequests(server).length).toBe(before + 1);
    }
    // A refused initial sync (no since) is not retried either.
    const fresh = await setup();
    fresh.server.failNext("/sync", { status: 400, body: { errcode: "M_INVALID_PARAM" } });
    await expect(new SyncLoop({ api: fresh.api, store: fresh.store, userId: ME }).syncOnce()).rejects.toMatchObject({ status: 400 });
    expect(syncRequests(fresh.server)).toHaveLength(1);
    expect(await store.getSyncToken()).toBe("s0+");
  });

  it("stays logged out on a 401 with a since token (no initial sync)", async () => {
    const { store, api, server } = await setup();
    const loop = new SyncLoop({ api, store, userId: ME, sleep: async () => undefined });
    await loop.syncOnce();
    server.failNext("/sync", { status: 401, body: { errcode: "M_UNKNOWN_TOKEN" } });
    loop.start();
    await until(() => loop.status === "loggedOut");
    expect(syncRequests(server)).toHaveLength(2);
  });

  it("wakes from a backoff at once when told the network is back", async () => {
    const { store, api, server } = await setup();
    server.offline = true;
    const loop = new SyncLoop({ api, store, userId: ME, initialBackoffMs: 60_000 });
    loop.start();
    await until(() => loop.status === "offline");
    server.offline = false;
    loop.wake();
    await until(() => loop.status === "online");
    await loop.stop();
  });

  it("restarts cleanly when started again while still stopping (React StrictMode)", async () => {
    const { store, api, server } = await setup();
    const loop = new SyncLoop({ api, store, userId: ME, timeoutMs: 0 });
    loop.start();
    const stopping = loop.stop();
    loop.start();
    await stopping;
    await until(() => loop.status === "online");
    const before = syncRequests(server).length;
    await loop.stop();
    expect(loop.status).toBe("stopped");
    // Stopped means stopped: no loop is left running.
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(syncRequests(server).length).toBe(before);
  });
});
