import { describe, expect, it } from "vitest";
import { Store } from "../store/store";
import { affectedRoomIds, reduceSync } from "../sync/reducer";
import { FakeHomeserver, freshDbName } from "../test/fakeServer";
import { ME, ROOM, setupOutbox } from "../test/fixtures";
import { Outbox } from "./outbox";


async function reload(store: Store, server: FakeHomeserver) {
  store.close();
  return setupOutbox(store.name, server);
}

describe("Outbox", () => {
  it("writes the entry, with its txnId, before any request is made", async () => {
    const { store, outbox, server } = await setupOutbox();
    const onDisk: unknown[] = [];
    server.onRequest = async () => {
      onDisk.push(...(await store.listOutbox()).map((e) => e.txnId));
    };
    const entry = await outbox.sendText(ROOM, "hello");
    await outbox.flush();
    expect(onDisk).toEqual([entry.txnId]);
    expect(server.sent).toHaveLength(1);
    expect(server.sent[0]).toMatchObject({ roomId: ROOM, txnId: entry.txnId, content: { msgtype: "m.text", body: "hello" } });
  });

  it("sends a redaction through PUT /redact with its txnId, in order with messages", async () => {
    const { store, outbox, server } = await setupOutbox();
    await outbox.sendText(ROOM, "first");
    const entry = await outbox.redact(ROOM, "$target", "typo");
    expect(await outbox.flush()).toBe("done");
    const redaction = server.requests.find((r) => r.method === "PUT" && r.path.includes("/redact/"));
    expect(redaction?.path).toBe(`/_matrix/client/v3/rooms/${ROOM}/redact/$target/${entry.txnId}`);
    expect(redaction?.body).toEqual({ reason: "typo" });
    expect(server.sent.map((s) => s.type)).toEqual(["m.room.message", "m.room.redaction"]);
    // The local echo says what it redacts, so the view hides the message at once.
    const echo = (await store.getTimeline(ROOM)).find((r) => r.event.type === "m.room.redaction");
    expect(echo?.event).toMatchObject({ redacts: "$target", content: { redacts: "$target", reason: "typo" } });
  });

  it("keeps an entry written offline across a reload, with the same txnId, and sends it later", async () => {
    const server = new FakeHomeserver();
    server.offline = true;
    const first = await setupOutbox(freshDbName(), server);
    const entry = await first.outbox.sendText(ROOM, "written on the train");
    expect(await first.outbox.flush()).toBe("blocked");
    expect(server.sent).toHaveLength(0);

    const second = await reload(first.store, server);
    const [kept] = await second.store.listOutbox();
    expect(kept).toMatchObject({ txnId: entry.txnId, status: "pending", content: { body: "written on the train" } });
    expect(kept!.attempts).toBeGreaterThanOrEqual(1);

    server.offline = false;
    expect(await second.outbox.flush()).toBe("done");
    expect(server.sent.map((s) => s.txnId)).toEqual([entry.txnId]);
    expect(await second.store.listOutbox()).toEqual([]);
  });

  it("removes an entry only when the server answered with an event_id", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/send/", { status: 502, body: { errcode: "M_UNKNOWN", error: "Bad gateway" } });
    server.failNext("/send/", "offline");
    const entry = await outbox.sendText(ROOM, "hi");
    await outbox.flush(); // 502
    expect((await store.listOutbox()).map((e) => e.txnId)).toEqual([entry.txnId]);
    await outbox.flush(); // offline
    expect((await store.listOutbox()).map((e) => e.txnId)).toEqual([entry.txnId]);
    expect(await outbox.flush()).toBe("done"); // answered
    expect(await store.listOutbox()).toEqual([]);
    // Every try used the txnId fixed at the moment of writing.
    const txnIds = server.sendRequests().map((r) => r.path.split("/").pop());
    expect(txnIds).toEqual([entry.txnId, entry.txnId, entry.txnId]);
    // And the message is on screen, as a local echo, until /sync brings the real one.
    const timeline = await store.getTimeline(ROOM);
    expect(timeline.map((t) => [t.eventId, t.local])).toEqual([[server.sent[0]!.eventId, true]]);
  });

  it("retries a send whose answer was lost with the same txnId, so it arrives once", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/send/", "lost-answer");
    const entry = await outbox.sendText(ROOM, "once");
    expect(await outbox.flush()).toBe("blocked");
    // The server has it, we do not know: the entry stays.
    expect(server.sent).toHaveLength(1);
    expect(await store.listOutbox()).toHaveLength(1);
    expect(await outbox.flush()).toBe("done");
    expect(server.sendRequests()).toHaveLength(2);
    expect(new Set(server.sendRequests().map((r) => r.path))).toHaveProperty("size", 1);
    expect(server.sent).toHaveLength(1);
    expect(server.sent[0]!.txnId).toBe(entry.txnId);
    expect(await store.listOutbox()).toEqual([]);
  });

  it("sends in the order the messages were written", async () => {
    const server = new FakeHomeserver();
    server.offline = true;
    const { outbox, store } = await setupOutbox(freshDbName(), server);
    for (const text of ["one", "two", "three"]) await outbox.sendText(ROOM, text);
    await outbox.sendText("!other:example.org", "four");
    await outbox.flush();
    expect((await store.listOutbox()).map((e) => (e.content as { body: string }).body)).toEqual([
      "one", "two", "three", "four",
    ]);
    server.offline = false;
    // The second one fails for now: nothing after it may overtake it.
    const bodies = () => server.sent.map((s) => (s.content as { body: string }).body);
    server.faults.push({ match: (r) => (r.body as { body?: string })?.body === "two", fault: { status: 503 } });
    expect(await outbox.flush()).toBe("blocked");
    expect(bodies()).toEqual(["one"]);
    expect(await outbox.flush()).toBe("done");
    expect(bodies()).toEqual(["one", "two", "three", "four"]);
  });

  it("does not let an entry the server refused block the others; retry reuses its txnId", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/send/", { status: 403, body: { errcode: "M_FORBIDDEN", error: "Not in room" } });
    const refused = await outbox.sendText(ROOM, "refused");
    const next = await outbox.sendText(ROOM, "next");
    await outbox.flush();
    expect(server.sent.map((s) => s.txnId)).toEqual([next.txnId]);
    expect(await store.listOutbox()).toMatchObject([{ txnId: refused.txnId, status: "failed", error: "Not in room" }]);
    await outbox.retry(refused.txnId);
    expect(server.sent.map((s) => s.txnId)).toEqual([next.txnId, refused.txnId]);
    expect(await store.listOutbox()).toEqual([]);
  });

  it("is confirmed by /sync too: our event coming back with its transaction_id", async () => {
    const server = new FakeHomeserver();
    server.failNext("/send/", "lost-answer");
    const { store, outbox } = await setupOutbox(freshDbName(), server);
    const entry = await outbox.sendText(ROOM, "echo");
    await outbox.flush();
    expect(await store.listOutbox()).toHaveLength(1);
    const echo = server.echoOf(server.sent[0]!, ME);
    const response = { next_batch: "s2", rooms: { join: { [ROOM]: { timeline: { events: [echo] } } } } };
    await store.applySync(affectedRoomIds(response), (prev) => reduceSync(response, ME, prev));
    expect(await store.getOutbox(entry.txnId)).toBeUndefined();
    expect((await store.getTimeline(ROOM)).map((t) => t.eventId)).toEqual([echo.event_id]);
    // Nothing left to send, so no second request.
    await outbox.flush();
    expect(server.sendRequests()).toHaveLength(1);
  });

  it("discards an entry the user gives up on", async () => {
    const server = new FakeHomeserver();
    server.offline = true;
    const { store, outbox } = await setupOutbox(freshDbName(), server);
    const entry = await outbox.sendText(ROOM, "never mind");
    await outbox.discard(entry.txnId);
    expect(await store.listOutbox()).toEqual([]);
  });
});
