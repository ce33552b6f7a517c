// A fake homeserver behind a fake `fetch`, for tests: it records every request, dedupes sends
// on their txnId as a real server does, and can be told to fail in the ways networks fail.

import type { FetchLike } from "../api/client";
import type { RoomEvent, SyncResponse } from "../api/types";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string>;
}

/** What to do with one request instead of answering it normally. */
export type Fault =
  | "offline" // fetch rejects; the server never saw the request
  | "lost-answer" // the server handled the request, then the connection dropped
  | { status: number; body?: unknown };

export interface SentEvent {
  eventId: string;
  roomId: string;
  type: string;
  txnId: string;
  content: unknown;
}

export class FakeHomeserver {
  readonly requests: RecordedRequest[] = [];
  /** Events the server accepted, once each, in the order it accepted them. */
  readonly sent: SentEvent[] = [];
  /** Answers of GET /sync, in order; when empty, /sync answers an empty response. */
  readonly syncResponses: SyncResponse[] = [];
  /** Faults for the next requests that match. */
  readonly faults: { match: (r: RecordedRequest) => boolean; fault: Fault }[] = [];
  /** Files the server accepted through POST /upload, in order (a repeated upload is another). */
  readonly uploads: { contentUri: string; fileName: string | null; contentType: string; file: Blob }[] = [];
  offline = false;
  /** Called before a request is answered (to check what is on disk at that moment). */
  onRequest?: (request: RecordedRequest) => void | Promise<void>;
  private nextEvent = 1;
  private byTxn = new Map<string, SentEvent>();

  readonly fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>));
    const request: RecordedRequest = {
      method: init?.method ?? "GET",
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      // JSON bodies parsed; a Blob (an upload) as it is.
      body: typeof init?.body === "string" ? JSON.parse(init.body) : (init?.body ?? undefined),
      headers,
    };
    this.requests.push(request);
    await this.onRequest?.(request);
    if (this.offline) throw new TypeError("Failed to fetch");
    const index = this.faults.findIndex((f) => f.match(request));
    const fault = index >= 0 ? this.faults.splice(index, 1)[0]?.fault : undefined;
    if (fault === "offline") throw new TypeError("Failed to fetch");
    if (fault && fault !== "lost-answer") return json(fault.status, fault.body ?? {});
    const response = this.handle(request, url);
    if (fault === "lost-answer") throw new TypeError("network connection was lost");
    return response;
  };

  /** Fails the next request whose path contains `pathPart`. */
  failNext(pathPart: string, fault: Fault, method?: string): void {
    this.faults.push({
      match: (r) => r.path.includes(pathPart) && (method === undefined || r.method === method),
      fault,
    });
  }

  sendRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "PUT" && r.path.includes("/send/"));
  }

  private handle(request: RecordedRequest, url: URL): Response {
    const redact = request.path.match(/^\/_matrix\/client\/v3\/rooms\/([^/]+)\/redact\/[^/]+\/([^/]+)$/);
    const send =
      request.path.match(/^\/_matrix\/client\/v3\/rooms\/([^/]+)\/send\/([^/]+)\/([^/]+)$/) ??
      (redact ? [redact[0], redact[1], "m.room.redaction", redact[2]] : null);
    if (request.path === "/_matrix/media/v3/upload" && request.method === "POST") {
      const contentUri = `mxc://example.org/media${this.uploads.length + 1}`;
      const file = request.body instanceof Blob ? request.body : new Blob([]);
      const contentType = request.headers["Content-Type"] ?? "application/octet-stream";
      this.uploads.push({ contentUri, fileName: url.searchParams.get("filename"), contentType, file });
      return json(200, { content_uri: contentUri });
    }
    const media = request.path.match(/^\/_matrix\/client\/v1\/media\/(?:download|thumbnail)\/([^/]+)\/([^/]+)/);
    if (media && request.method === "GET") {
      if (!request.headers["Authorization"]) return json(401, { errcode: "M_MISSING_TOKEN", error: "No token" });
      const found = this.uploads.find((u) => u.contentUri === `mxc://${media[1]}/${media[2]}`);
      if (!found) return json(404, { errcode: "M_NOT_FOUND", error: "Not found" });
      return new Response(found.file, { status: 200, headers: { "Content-Type": found.contentType } });
    }
    if (send && request.method === "PUT") {
      const [, roomId = "", type = "", txnId = ""] = send;
      let event = this.byTxn.get(txnId);
      if (!event) {
        event = { eventId: `$ev${this.nextEvent++}`, roomId, type, txnId, content: request.body };
        this.byTxn.set(txnId, event);
        this.sent.push(event);
      }
      return json(200, { event_id: event.eventId });
    }
    if (request.path === "/_matrix/client/v3/sync") {
      const next = this.syncResponses.shift();
      const since = url.searchParams.get("since") ?? "s0";
      return json(200, next ?? { next_batch: `${since}+` });
    }
    return json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
  }

  /** The event the server would send back in /sync for a send it accepted. */
  echoOf(sent: SentEvent, sender: string): RoomEvent {
    return {
      event_id: sent.eventId,
      type: sent.type,
      sender,
      origin_server_ts: 1_700_000_000_000,
      content: sent.content as Record<string, unknown>,
      unsigned: { transaction_id: sent.txnId },
    };
  }
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

let dbCounter = 0;
export function freshDbName(): string {
  dbCounter += 1;
  return `test-db-${dbCounter}`;
}

export function event(
  eventId: string,
  partial: Partial<RoomEvent> & { type?: string } = {},
): RoomEvent {
  return {
    event_id: eventId,
    type: "m.room.message",
    sender: "@bob:example.org",
    origin_server_ts: 1_700_000_000_000,
    content: { msgtype: "m.text", body: eventId },
    ...partial,
  };
}

export function stateEvent(
  type: string,
  stateKey: string,
  content: Record<string, unknown>,
  extra: Partial<RoomEvent> = {},
): RoomEvent {
  return event(`$${type}:${stateKey}:${Math.random().toString(36).slice(2)}`, {
    type,
    state_key: stateKey,
    content,
    ...extra,
  });
}
