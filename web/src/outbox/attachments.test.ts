import { describe, expect, it } from "vitest";
import { attachmentContent } from "../media/attach";
import { FakeHomeserver, freshDbName } from "../test/fakeServer";
import { ROOM, setupOutbox } from "../test/fixtures";
import { Outbox } from "./outbox";


const png = () => new Blob([new Uint8Array([137, 80, 78, 71, 1, 2, 3])], { type: "image/png" });
const uploadRequests = (server: FakeHomeserver) => server.requests.filter((r) => r.path === "/_matrix/media/v3/upload");

describe("attachmentContent", () => {
  it("describes an image with its size, and anything else as a file", async () => {
    const image = await attachmentContent(png(), "cat.png", async () => ({ w: 640, h: 480 }));
    expect(image).toEqual({ msgtype: "m.image", body: "cat.png", info: { mimetype: "image/png", size: 7, w: 640, h: 480 } });
    const undecodable = await attachmentContent(png(), "broken.png", async () => undefined);
    expect(undecodable).toMatchObject({ msgtype: "m.file", info: { mimetype: "image/png", size: 7 } });
    const pdf = await attachmentContent(new Blob(["%PDF"], { type: "application/pdf" }), "a.pdf");
    expect(pdf).toEqual({ msgtype: "m.file", body: "a.pdf", info: { mimetype: "application/pdf", size: 4 } });
  });
});

describe("Outbox attachments", () => {
  it("uploads the file, then sends the event with the mxc URI and the entry's txnId", async () => {
    const { store, outbox, server } = await setupOutbox();
    const content = { msgtype: "m.image", body: "cat.png", info: { mimetype: "image/png", size: 7, w: 640, h: 480 } };
    const progress: number[] = [];
    outbox.onUploadProgress(() => {
      const state = outbox.uploadState(entry.txnId);
      if (state) progress.push(state.loaded);
    });
    const entry = await outbox.sendAttachment(ROOM, png(), "cat.png", content);
    expect(await outbox.flush()).toBe("done");

    const [upload] = uploadRequests(server);
    expect(upload?.method).toBe("POST");
    expect(upload?.query.get("filename")).toBe("cat.png");
    expect(upload?.headers).toMatchObject({ Authorization: "Bearer tok", "Content-Type": "image/png" });
    expect(server.uploads).toHaveLength(1);
    expect(await server.uploads[0]!.file.arrayBuffer()).toEqual(await png().arrayBuffer());
    expect(server.sent).toEqual([
      expect.objectContaining({ txnId: entry.txnId, content: { ...content, url: "mxc://example.org/media1" } }),
    ]);
    expect(progress).toContain(7);
    expect(outbox.uploadState(entry.txnId)).toBeUndefined();
    expect(await store.listOutbox()).toEqual([]);
    // The local echo has the URL, so the image shows at once.
    const [echo] = await store.getTimeline(ROOM);
    expect(echo?.event.content).toMatchObject({ url: "mxc://example.org/media1" });
  });

  it("keeps the Blob on disk while offline, across a reload, and uploads it later", async () => {
    const server = new FakeHomeserver();
    server.offline = true;
    const first = await setupOutbox(freshDbName(), server);
    const entry = await first.outbox.sendAttachment(ROOM, png(), "cat.png", { msgtype: "m.file", body: "cat.png" });
    expect(await first.outbox.flush()).toBe("blocked");
    first.store.close();

    server.offline = false;
    const second = await setupOutbox(first.store.name, server);
    const [kept] = await second.store.listOutbox();
    expect(kept?.txnId).toBe(entry.txnId);
    expect(kept?.attachment?.fileName).toBe("cat.png");
    expect(await kept!.attachment!.file.arrayBuffer()).toEqual(await png().arrayBuffer());
    expect(await second.outbox.flush()).toBe("done");
    expect(server.sent.map((s) => s.txnId)).toEqual([entry.txnId]);
  });

  it("repeats an upload whose answer was lost (a second media item), and sends the event once", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/upload", "lost-answer");
    const entry = await outbox.sendAttachment(ROOM, png(), "cat.png", { msgtype: "m.file", body: "cat.png" });
    expect(await outbox.flush()).toBe("blocked");
    expect(server.uploads).toHaveLength(1); // the server has it; we never heard
    expect((await store.getOutbox(entry.txnId))?.attachment).toBeDefined();

    expect(await outbox.flush()).toBe("done");
    expect(uploadRequests(server)).toHaveLength(2);
    expect(server.uploads).toHaveLength(2);
    expect(server.sent).toHaveLength(1);
    expect(server.sent[0]).toMatchObject({ txnId: entry.txnId, content: { url: "mxc://example.org/media2" } });
  });

  it("does not upload again when only the send's answer was lost", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/send/", "lost-answer");
    const entry = await outbox.sendAttachment(ROOM, png(), "cat.png", { msgtype: "m.file", body: "cat.png" });
    expect(await outbox.flush()).toBe("blocked");
    // The upload's answer was stored before the send: the Blob is gone, the URL kept.
    const kept = await store.getOutbox(entry.txnId);
    expect(kept?.attachment).toBeUndefined();
    expect(kept?.content).toMatchObject({ url: "mxc://example.org/media1" });
    expect(await outbox.flush()).toBe("done");
    expect(server.uploads).toHaveLength(1);
    expect(server.sendRequests().map((r) => r.path.split("/").pop())).toEqual([entry.txnId, entry.txnId]);
    expect(server.sent).toHaveLength(1);
  });

  it("marks an upload the server refuses (too large) as failed, and goes on with the rest", async () => {
    const { store, outbox, server } = await setupOutbox();
    server.failNext("/upload", { status: 413, body: { errcode: "M_TOO_LARGE", error: "File too large" } });
    const big = await outbox.sendAttachment(ROOM, png(), "big.png", { msgtype: "m.file", body: "big.png" });
    const text = await outbox.sendText(ROOM, "after");
    expect(await outbox.flush()).toBe("done");
    expect(server.sent.map((s) => s.txnId)).toEqual([text.txnId]);
    expect(await store.listOutbox()).toMatchObject([{ txnId: big.txnId, status: "failed", error: "File too large" }]);
  });

  it("aborts the upload in progress when the entry is discarded", async () => {
    const { store, outbox, server } = await setupOutbox();
    let started!: () => void;
    const uploading = new Promise<void>((resolve) => (started = resolve));
    server.onRequest = async (request) => {
      if (!request.path.endsWith("/upload")) return;
      started();
      await new Promise((resolve) => setTimeout(resolve, 50));
    };
    const entry = await outbox.sendAttachment(ROOM, png(), "cat.png", { msgtype: "m.file", body: "cat.png" });
    const flushed = outbox.flush();
    await uploading;
    await outbox.discard(entry.txnId);
    expect(await flushed).toBe("done");
    expect(server.sent).toEqual([]);
    expect(await store.listOutbox()).toEqual([]);
  });
});
