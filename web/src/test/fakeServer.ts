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

/** A validation mail the fake server "sent" through /register/email/requestToken. */
export interface EmailSession {
  sid: string;
  clientSecret: string;
  email: string;
  /** The highest send_attempt seen: each higher one sends another mail. */
  sendAttempt: number;
  mailsSent: number;
  validated: boolean;
}

export class FakeHomeserver {
  /**
   * Registration, off unless set (then /register answers 404 as any unknown path): the flows
   * the server offers, e.g. [["m.login.dummy"]] or [["m.login.email.identity"]].
   */
  registration: { flows: string[][] } | undefined;
  /** Validation sessions of /register/email/requestToken, in order. */
  readonly emailSessions: EmailSession[] = [];
  /** Addresses /requestToken refuses with M_THREEPID_IN_USE. */
  readonly takenEmails = new Set<string>();
  /** Accounts /register created. */
  readonly registered: string[] = [];
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

  /** The user followed the link of a mail (the last one sent unless `sid` says). */
  validateEmail(sid?: string): void {
    const found = sid ? this.emailSessions.find((e) => e.sid === sid) : this.emailSessions.at(-1);
    if (!found) throw new Error("No validation session to validate");
    found.validated = true;
  }

  registerRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "POST" && r.path === "/_matrix/client/v3/register");
  }

  sendRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "PUT" && r.path.includes("/send/"));
  }

  private handle(request: RecordedRequest, url: URL): Response {
    const redact = request.path.match(/^\/_matrix\/client\/v3\/rooms\/([^/]+)\/redact\/[^/]+\/([^/]+)$/);
    const send =
      request.path.match(/^\/_matrix\/client\/v3\/rooms\/([^/]+)\/send\/([^/]+)\/([^/]+)$/) ??
      (redact ? [redact[0], redact[1], "m.room.redaction", redact[2]] : null);
    if (this.registration && request.method === "POST" && request.path.startsWith("/_matrix/client/v3/register")) {
      return this.handleRegistration(request, this.registration.flows);
    }
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

  private handleRegistration(request: RecordedRequest, flows: string[][]): Response {
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (request.path === "/_matrix/client/v3/register/email/requestToken") {
      const email = String(body["email"] ?? "").toLowerCase();
      const clientSecret = String(body["client_secret"] ?? "");
      const sendAttempt = Number(body["send_attempt"]);
      if (!/^[0-9a-zA-Z.=_-]{1,255}$/.test(clientSecret) || !email.includes("@") || !(sendAttempt >= 1)) {
        return json(400, { errcode: "M_INVALID_PARAM", error: "Bad requestToken parameters" });
      }
      if (this.takenEmails.has(email)) {
        return json(400, { errcode: "M_THREEPID_IN_USE", error: "The specified address is already in use" });
      }
      let found = this.emailSessions.find((e) => e.email === email && e.clientSecret === clientSecret);
      if (!found) {
        found = { sid: `sid${this.emailSessions.length + 1}`, clientSecret, email, sendAttempt: 0, mailsSent: 0, validated: false };
        this.emailSessions.push(found);
      }
      if (sendAttempt > found.sendAttempt) {
        found.sendAttempt = sendAttempt;
        found.mailsSent += 1;
      }
      return json(200, { sid: found.sid });
    }
    if (request.path !== "/_matrix/client/v3/register") {
      return json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
    }
    const challenge = { session: "uia1", flows: flows.map((stages) => ({ stages })), params: {} };
    const auth = body["auth"] as Record<string, unknown> | undefined;
    const offers = (stage: string) => flows.some((f) => f.length === 1 && f[0] === stage);
    let ok = false;
    if (auth?.["type"] === "m.login.dummy" && offers("m.login.dummy")) ok = true;
    if (auth?.["type"] === "m.login.email.identity" && offers("m.login.email.identity")) {
      const creds = (auth["threepid_creds"] ?? {}) as Record<string, unknown>;
      const found = this.emailSessions.find((e) => e.sid === creds["sid"] && e.clientSecret === creds["client_secret"]);
      if (!found?.validated) {
        return json(401, {
          ...challenge,
          completed: [],
          errcode: "M_UNAUTHORIZED",
          error: "The email address has not been validated: follow the link in the mail first",
        });
      }
      ok = true;
    }
    if (!ok) return json(401, challenge);
    const username = String(body["username"] ?? "");
    if (this.registered.includes(username)) {
      return json(400, { errcode: "M_USER_IN_USE", error: "User ID already taken" });
    }
    this.registered.push(username);
    return json(200, {
      user_id: `@${username}:example.org`,
      access_token: `token-${username}`,
      device_id: `DEV${this.registered.length}`,
    });
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
