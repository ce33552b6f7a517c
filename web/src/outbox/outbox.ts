// The outbox: what the user writes is on disk, with its txnId, before any request is made.
// Entries are sent one at a time in the order they were written; an entry leaves the outbox
// only when the server has answered with an event_id (or /sync showed it back to us). Every
// retry reuses the entry's txnId, so a send whose answer was lost is not posted twice: the
// server answers the repeated txnId with the first event_id.

import { isAbort, isTransient, type MatrixApi } from "../api/client";
import type { JsonObject, RoomEvent } from "../api/types";
import type { OutboxRecord } from "../store/schema";
import type { Store } from "../store/store";

export type FlushResult = "done" | "blocked";

/** Bytes sent of the upload in progress of an entry (kept in memory, not on disk). */
export interface UploadState {
  loaded: number;
  total: number;
}

export interface OutboxOptions {
  store: Store;
  api: Pick<MatrixApi, "sendEvent" | "redact" | "upload">;
  userId: string;
  newTxnId?: () => string;
  now?: () => number;
  onError?: (entry: OutboxRecord, error: unknown) => void;
  /** False while another tab sends the outbox (tabs.ts): entries then only wait on disk. */
  canSend?: () => boolean;
}

let counter = 0;

/** Unique per device and never reused: time, a counter and randomness. */
export function makeTxnId(): string {
  counter += 1;
  const random =
    typeof crypto !== "undefined" && "randomUUID" in crypto
      ? crypto.randomUUID().replace(/-/g, "").slice(0, 16)
      : Math.random().toString(36).slice(2);
  return `web${Date.now().toString(36)}.${counter}.${random}`;
}

export class Outbox {
  private running: Promise<FlushResult> | undefined;
  private again = false;
  private readonly uploads = new Map<string, UploadState>();
  private readonly uploadListeners = new Set<() => void>();
  private uploading: { txnId: string; controller: AbortController } | undefined;

  constructor(private readonly options: OutboxOptions) {}

  /** Queues a message: resolves once the entry is stored, and starts sending in the background. */
  async send(roomId: string, content: JsonObject, eventType = "m.room.message"): Promise<OutboxRecord> {
    const { store } = this.options;
    const entry = await store.addOutbox({
      txnId: (this.options.newTxnId ?? makeTxnId)(),
      roomId,
      eventType,
      content,
      createdAt: (this.options.now ?? Date.now)(),
      status: "pending",
      attempts: 0,
    });
    void this.flush().catch(() => undefined);
    return entry;
  }

  async sendText(roomId: string, text: string): Promise<OutboxRecord> {
    return this.send(roomId, { msgtype: "m.text", body: text });
  }

  /**
   * Queues an image or file: the Blob is stored with the entry (so it survives offline and a
   * reload), uploaded when its turn comes, and the event then sent with the entry's txnId.
   * `content` is the event without `url` (msgtype, body, info).
   */
  async sendAttachment(roomId: string, file: Blob, fileName: string, content: JsonObject): Promise<OutboxRecord> {
    const entry = await this.options.store.addOutbox({
      txnId: (this.options.newTxnId ?? makeTxnId)(),
      roomId,
      eventType: "m.room.message",
      content,
      attachment: { file, fileName },
      createdAt: (this.options.now ?? Date.now)(),
      status: "pending",
      attempts: 0,
    });
    void this.flush().catch(() => undefined);
    return entry;
  }

  /** The upload in progress of an entry, if any. */
  uploadState(txnId: string): UploadState | undefined {
    return this.uploads.get(txnId);
  }

  onUploadProgress(listener: () => void): () => void {
    this.uploadListeners.add(listener);
    return () => this.uploadListeners.delete(listener);
  }

  private setUpload(txnId: string, state: UploadState | undefined): void {
    if (state) this.uploads.set(txnId, state);
    else this.uploads.delete(txnId);
    for (const listener of [...this.uploadListeners]) listener();
  }

  /** Queues a redaction of `eventId`; it goes out in order with the rest, with its txnId. */
  async redact(roomId: string, eventId: string, reason?: string): Promise<OutboxRecord> {
    const entry = await this.options.store.addOutbox({
      txnId: (this.options.newTxnId ?? makeTxnId)(),
      roomId,
      eventType: "m.room.redaction",
      content: reason ? { reason } : {},
      redacts: eventId,
      createdAt: (this.options.now ?? Date.now)(),
      status: "pending",
      attempts: 0,
    });
    void this.flush().catch(() => undefined);
    return entry;
  }

  /** Sends every pending entry in order; stops at the first that cannot be sent for now.
   *  Only one flush runs at a time; a call during one makes it go round once more. */
  flush(): Promise<FlushResult> {
    if (this.options.canSend && !this.options.canSend()) return Promise.resolve("blocked");
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let result: FlushResult;
      do {
        this.again = false;
        result = await this.flushOnce();
      } while (this.again && result === "done");
      return result;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** A failed entry goes back into the queue, with its txnId. */
  async retry(txnId: string): Promise<FlushResult> {
    await this.options.store.updateOutbox(txnId, { status: "pending", error: undefined });
    return this.flush();
  }

  /** Drops an entry; an upload of it in progress is aborted. */
  async discard(txnId: string): Promise<void> {
    await this.options.store.discardOutbox(txnId);
    if (this.uploading?.txnId === txnId) this.uploading.controller.abort();
  }

  /** Uploads the entry's file, then stores its mxc:// URI in the content and drops the Blob
   *  (persisted before the send, so a retry of the send does not upload again). */
  private async uploadAttachment(entry: OutboxRecord): Promise<OutboxRecord | undefined> {
    const { store, api } = this.options;
    const attachment = entry.attachment!;
    const controller = new AbortController();
    this.uploading = { txnId: entry.txnId, controller };
    const total = attachment.file.size;
    this.setUpload(entry.txnId, { loaded: 0, total });
    try {
      const { content_uri: url } = await api.upload(attachment.file, {
        fileName: attachment.fileName,
        contentType: attachment.file.type || "application/octet-stream",
        signal: controller.signal,
        onProgress: (loaded, size) => this.setUpload(entry.txnId, { loaded, total: size || total }),
      });
      const content = { ...entry.content, url };
      await store.updateOutbox(entry.txnId, { content, attachment: undefined });
      // Discarded while the answer was on its way: updateOutbox found nothing to update.
      return (await store.getOutbox(entry.txnId)) ? { ...entry, content, attachment: undefined } : undefined;
    } finally {
      this.uploading = undefined;
      this.setUpload(entry.txnId, undefined);
    }
  }

  private async flushOnce(): Promise<FlushResult> {
    const { store, api, userId } = this.options;
    const now = this.options.now ?? Date.now;
    for (;;) {
      let entry = (await store.listOutbox()).find((e) => e.status === "pending");
      if (!entry) return "done";
      await store.updateOutbox(entry.txnId, { attempts: entry.attempts + 1 });
      let eventId: string;
      try {
        if (entry.attachment) {
          const uploaded = await this.uploadAttachment(entry);
          if (!uploaded) continue; // discarded meanwhile
          entry = uploaded;
        }
        ({ event_id: eventId } =
          entry.redacts !== undefined
            ? await api.redact(entry.roomId, entry.redacts, entry.txnId, entry.content)
            : await api.sendEvent(entry.roomId, entry.eventType, entry.txnId, entry.content));
      } catch (error) {
        // The user cancelled the upload (the entry is discarded): go on with the rest.
        if (isAbort(error)) continue;
        this.options.onError?.(entry, error);
        if (isTransient(error)) {
          // No answer, or the server is struggling: keep it (and everything after it, so the
          // order holds) for the next flush, with the same txnId.
          return "blocked";
        }
        // The server refused it (403 not in the room, 400...): it will not succeed by
        // repeating. Mark it so the user can retry or discard, and go on with the rest.
        const message = error instanceof Error ? error.message : String(error);
        await store.updateOutbox(entry.txnId, { status: "failed", error: message });
        continue;
      }
      const echo: RoomEvent = {
        event_id: eventId,
        room_id: entry.roomId,
        type: entry.eventType,
        sender: userId,
        origin_server_ts: now(),
        content: entry.content,
        unsigned: { transaction_id: entry.txnId },
      };
      if (entry.redacts !== undefined) {
        echo.redacts = entry.redacts;
        echo.content = { ...entry.content, redacts: entry.redacts };
      }
      await store.confirmOutbox(entry.txnId, echo);
    }
  }
}
