// A small typed client for the Matrix client-server API. It talks only the standard API, so the
// app works against any conformant homeserver. It keeps no state beyond the session it was
// given; persistence is the store's job.

import type {
  CreateRoomRequest,
  HierarchyRoom,
  JsonObject,
  LoginResponse,
  MessagesResponse,
  RoomEvent,
  SyncResponse,
  UiaResponse,
} from "./types";
import { UPLOAD_PATH } from "./media";

/** The server answered, with an error. */
export class MatrixApiError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly body: JsonObject = {},
  ) {
    super(message);
    this.name = "MatrixApiError";
  }

  /** For M_LIMIT_EXCEEDED: how long the server asks us to wait. */
  get retryAfterMs(): number | undefined {
    const value = this.body["retry_after_ms"];
    return typeof value === "number" ? value : undefined;
  }
}

/** No answer: offline, DNS, connection reset, or our own timeout. The request may or may not
 *  have reached the server, so only idempotent requests (a send with its txnId) may be retried. */
export class NetworkError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = "NetworkError";
  }
}

/** Registration needs stages this client cannot do (captcha, email, terms...). */
export class RegistrationStagesError extends Error {
  constructor(readonly stages: string[][], serverError?: string) {
    super(
      serverError ??
        `This server requires registration steps this client cannot complete: ${stages
          .map((flow) => flow.join(" → "))
          .join("; ")}`,
    );
    this.name = "RegistrationStagesError";
  }
}

/** The stage of user-interactive auth that validates an email address. */
export const EMAIL_STAGE = "m.login.email.identity";

/**
 * The server wants an email address validated before it registers the account (a flow that is
 * exactly [m.login.email.identity]). `optional` when it also offers the m.login.dummy flow.
 */
export class EmailVerificationNeeded extends Error {
  constructor(
    readonly session: string | undefined,
    readonly optional: boolean,
  ) {
    super(optional ? "The server asks for an email address (optional)" : "The server requires an email address");
    this.name = "EmailVerificationNeeded";
  }
}

/** Errors worth retrying later with the same request (and, for sends, the same txnId). */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof MatrixApiError) return error.status >= 500 || error.status === 429;
  return false;
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

export interface Session {
  baseUrl: string;
  userId: string;
  accessToken: string;
  deviceId: string;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  baseUrl: string;
  accessToken?: string;
  fetch?: FetchLike;
  /** Time limit of ordinary requests; /sync adds its own long-poll timeout on top. */
  requestTimeoutMs?: number;
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  auth?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

const CLIENT_V3 = "/_matrix/client/v3";
const CLIENT_V1 = "/_matrix/client/v1";

export function normalizeBaseUrl(url: string): string {
  let trimmed = url.trim();
  if (trimmed && !/^https?:\/\//i.test(trimmed)) trimmed = `https://${trimmed}`;
  return trimmed.replace(/\/+$/, "");
}

const enc = encodeURIComponent;

export class MatrixApi {
  readonly baseUrl: string;
  accessToken: string | undefined;
  private readonly fetchImpl: FetchLike;
  private readonly requestTimeoutMs: number;
  /** Uploads go through XMLHttpRequest (for progress) unless a fetch was given (tests). */
  private readonly useXhr: boolean;

  constructor(options: ApiOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.accessToken = options.accessToken;
    // Bound to globalThis: calling an unbound window.fetch throws "Illegal invocation".
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.useXhr = options.fetch === undefined && typeof XMLHttpRequest !== "undefined";
  }

  static forSession(session: Session, fetch?: FetchLike): MatrixApi {
    return new MatrixApi({ baseUrl: session.baseUrl, accessToken: session.accessToken, fetch });
  }

  // -- accounts ---------------------------------------------------------------------------------

  async versions(): Promise<{ versions: string[] }> {
    return this.request("GET", "/_matrix/client/versions", { auth: false });
  }

  async login(user: string, password: string, deviceName = "Web"): Promise<LoginResponse> {
    return this.request("POST", `${CLIENT_V3}/login`, {
      auth: false,
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: deviceName,
      },
    });
  }

  /**
   * Registers with the m.login.dummy flow. A server that offers a flow of only the email stage
   * gets an EmailVerificationNeeded (then requestRegisterEmailToken and registerWithAuth);
   * anything else is a RegistrationStagesError.
   */
  async register(username: string, password: string, deviceName = "Web"): Promise<LoginResponse> {
    try {
      return await this.registerWithAuth(username, password, undefined, deviceName);
    } catch (error) {
      if (!(error instanceof MatrixApiError) || error.status !== 401) throw error;
      const uia = error.body as UiaResponse;
      const flows = (uia.flows ?? []).map((flow) => flow.stages);
      const dummyOnly = flows.some((stages) => stages.every((stage) => stage === "m.login.dummy"));
      const emailOnly = flows.some((stages) => stages.length === 1 && stages[0] === EMAIL_STAGE);
      if (uia.flows && emailOnly) throw new EmailVerificationNeeded(uia.session, dummyOnly);
      if (!uia.flows || !dummyOnly) {
        throw new RegistrationStagesError(flows, uia.flows ? undefined : error.message);
      }
      const auth: JsonObject = { type: "m.login.dummy" };
      if (uia.session) auth["session"] = uia.session;
      try {
        return await this.registerWithAuth(username, password, auth, deviceName);
      } catch (second) {
        // A second 401 means the server wants more than the dummy stage after all.
        if (second instanceof MatrixApiError && second.status === 401) {
          const more = ((second.body as UiaResponse).flows ?? []).map((flow) => flow.stages);
          throw new RegistrationStagesError(more, (second.body as UiaResponse).error);
        }
        throw second;
      }
    }
  }

  /** One POST /register with the given auth dict (or none); a 401 is a MatrixApiError whose
   *  body is the UiaResponse. */
  async registerWithAuth(
    username: string,
    password: string,
    auth: JsonObject | undefined,
    deviceName = "Web",
  ): Promise<LoginResponse> {
    const body: JsonObject = { username, password, initial_device_display_name: deviceName };
    if (auth) body["auth"] = auth;
    return this.request<LoginResponse>("POST", `${CLIENT_V3}/register`, { auth: false, body });
  }

  /** Asks the server to mail a validation link to `email`; the same `sendAttempt` again does
   *  not send another mail, a higher one does. */
  async requestRegisterEmailToken(
    email: string,
    clientSecret: string,
    sendAttempt: number,
  ): Promise<{ sid: string; submit_url?: string }> {
    const answer = await this.request<{ sid?: unknown; submit_url?: unknown }>(
      "POST",
      `${CLIENT_V3}/register/email/requestToken`,
      { auth: false, body: { email, client_secret: clientSecret, send_attempt: sendAttempt } },
    );
    if (typeof answer.sid !== "string") {
      throw new MatrixApiError(500, "M_UNKNOWN", "The server did not answer with a session ID");
    }
    return typeof answer.submit_url === "string"
      ? { sid: answer.sid, submit_url: answer.submit_url }
      : { sid: answer.sid };
  }

  async logout(): Promise<void> {
    await this.request("POST", `${CLIENT_V3}/logout`, { body: {} });
  }

  // -- sync and history -------------------------------------------------------------------------

  async sync(options: {
    since?: string;
    timeoutMs?: number;
    filter?: string;
    signal?: AbortSignal;
  }): Promise<SyncResponse> {
    const timeout = options.timeoutMs ?? 30_000;
    return this.request("GET", `${CLIENT_V3}/sync`, {
      query: { since: options.since, timeout, filter: options.filter },
      signal: options.signal,
      // The server holds the request for up to `timeout`; give the answer time to come back.
      timeoutMs: timeout + this.requestTimeoutMs,
    });
  }

  async messages(
    roomId: string,
    options: { from?: string; dir?: "b" | "f"; limit?: number; signal?: AbortSignal },
  ): Promise<MessagesResponse> {
    return this.request("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/messages`, {
      query: { from: options.from, dir: options.dir ?? "b", limit: options.limit ?? 50 },
      signal: options.signal,
    });
  }

  // -- sending ----------------------------------------------------------------------------------

  /** PUT with the caller's txnId: the server answers the same event_id for a repeated txnId,
   *  which is what makes a retry after a lost answer safe. */
  async sendEvent(
    roomId: string,
    eventType: string,
    txnId: string,
    content: JsonObject,
  ): Promise<{ event_id: string }> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/send/${enc(eventType)}/${enc(txnId)}`;
    const answer = await this.request<{ event_id?: unknown }>("PUT", path, { body: content });
    if (typeof answer.event_id !== "string") {
      throw new MatrixApiError(500, "M_UNKNOWN", "The server did not answer with an event_id");
    }
    return { event_id: answer.event_id };
  }

  async sendState(
    roomId: string,
    eventType: string,
    stateKey: string,
    content: JsonObject,
  ): Promise<{ event_id: string }> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(eventType)}/${enc(stateKey)}`;
    return this.request("PUT", path, { body: content });
  }

  async getState(roomId: string): Promise<RoomEvent[]> {
    return this.request("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/state`);
  }

  async getStateEvent(roomId: string, eventType: string, stateKey = ""): Promise<JsonObject> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(eventType)}/${enc(stateKey)}`;
    return this.request("GET", path);
  }

  /** PUT /redact with the caller's txnId, idempotent like a send. */
  async redact(roomId: string, eventId: string, txnId: string, content: JsonObject = {}): Promise<{ event_id: string }> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`;
    const answer = await this.request<{ event_id?: unknown }>("PUT", path, { body: content });
    if (typeof answer.event_id !== "string") {
      throw new MatrixApiError(500, "M_UNKNOWN", "The server did not answer with an event_id");
    }
    return { event_id: answer.event_id };
  }

  /** Marks `eventId` (and everything before it) read: the server clears the room's counts. */
  async sendReadReceipt(roomId: string, eventId: string): Promise<void> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`;
    await this.request("POST", path, { body: {} });
  }

  async setTyping(roomId: string, userId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    const path = `${CLIENT_V3}/rooms/${enc(roomId)}/typing/${enc(userId)}`;
    await this.request("PUT", path, { body: typing ? { typing, timeout: timeoutMs } : { typing } });
  }

  // -- notifications ----------------------------------------------------------------------------

  async capabilities(): Promise<JsonObject> {
    const answer = await this.request<{ capabilities?: unknown }>("GET", `${CLIENT_V3}/capabilities`);
    return isObject(answer.capabilities) ? answer.capabilities : {};
  }

  async setPusher(pusher: JsonObject): Promise<void> {
    await this.request("POST", `${CLIENT_V3}/pushers/set`, { body: pusher });
  }

  // -- rooms ------------------------------------------------------------------------------------

  async createRoom(body: CreateRoomRequest): Promise<{ room_id: string }> {
    return this.request("POST", `${CLIENT_V3}/createRoom`, { body });
  }

  /** Joins by room ID or alias; `via` names servers to join through (for room IDs). */
  async join(roomIdOrAlias: string, via: string[] = []): Promise<{ room_id: string }> {
    const path = `${CLIENT_V3}/join/${enc(roomIdOrAlias)}${viaQuery(via)}`;
    return this.request("POST", path, { body: {} });
  }

  async leave(roomId: string): Promise<void> {
    await this.request("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/leave`, { body: {} });
  }

  async invite(roomId: string, userId: string): Promise<void> {
    await this.request("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/invite`, {
      body: { user_id: userId },
    });
  }

  async hierarchy(spaceId: string, limit = 50): Promise<{ rooms: HierarchyRoom[] }> {
    return this.request("GET", `${CLIENT_V1}/rooms/${enc(spaceId)}/hierarchy`, {
      query: { limit, max_depth: 1 },
    });
  }

  async setAccountData(userId: string, eventType: string, content: JsonObject): Promise<void> {
    const path = `${CLIENT_V3}/user/${enc(userId)}/account_data/${enc(eventType)}`;
    await this.request("PUT", path, { body: content });
  }

  async getAccountData(userId: string, eventType: string): Promise<JsonObject | undefined> {
    const path = `${CLIENT_V3}/user/${enc(userId)}/account_data/${enc(eventType)}`;
    try {
      return await this.request<JsonObject>("GET", path);
    } catch (error) {
      if (error instanceof MatrixApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  // -- media ------------------------------------------------------------------------------------

  /**
   * POST /_matrix/media/v3/upload: answers the new `mxc://` URI. Not idempotent: an upload
   * whose answer was lost and is repeated makes a second media item on the server.
   * In the browser it goes through XMLHttpRequest, since fetch reports no upload progress.
   */
  async upload(
    file: Blob,
    options: { fileName?: string; contentType?: string; onProgress?: UploadProgress; signal?: AbortSignal } = {},
  ): Promise<{ content_uri: string }> {
    if (!this.accessToken) throw new MatrixApiError(401, "M_MISSING_TOKEN", "Not logged in");
    const url = new URL(this.baseUrl + UPLOAD_PATH);
    if (options.fileName) url.searchParams.set("filename", options.fileName);
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.accessToken}`,
      "Content-Type": options.contentType || file.type || "application/octet-stream",
    };
    if (options.signal?.aborted) throw new DOMException("Aborted", "AbortError");
    let status: number;
    let text: string;
    if (this.useXhr) {
      ({ status, text } = await xhrUpload(url.toString(), headers, file, options.onProgress, options.signal));
    } else {
      let response: Response;
      try {
        response = await this.fetchImpl(url.toString(), {
          method: "POST",
          headers,
          body: file,
          signal: options.signal ?? null,
          cache: "no-store",
        });
        text = await response.text();
      } catch (error) {
        if (options.signal?.aborted) throw new DOMException("Aborted", "AbortError");
        throw new NetworkError("The server could not be reached", error);
      }
      status = response.status;
      options.onProgress?.(file.size, file.size);
    }
    const parsed = parseJson(text);
    if (status < 200 || status >= 300) throw apiError(status, parsed);
    const uri = isObject(parsed) ? parsed["content_uri"] : undefined;
    if (typeof uri !== "string") {
      throw new MatrixApiError(status, "M_UNKNOWN", "The server did not answer with a content_uri");
    }
    return { content_uri: uri };
  }

  /** GET of an authenticated media URL (download or thumbnail), with the access token. */
  async fetchMedia(url: string, signal?: AbortSignal): Promise<Blob> {
    if (!this.accessToken) throw new MatrixApiError(401, "M_MISSING_TOKEN", "Not logged in");
    let response: Response;
    let blob: Blob;
    try {
      response = await this.fetchImpl(url, {
        headers: { Authorization: `Bearer ${this.accessToken}` },
        signal: signal ?? null,
      });
      if (!response.ok) throw apiError(response.status, parseJson(await response.text()));
      blob = await response.blob();
    } catch (error) {
      if (error instanceof MatrixApiError) throw error;
      if (signal?.aborted) throw new DOMException("Aborted", "AbortError");
      throw new NetworkError("The media could not be fetched", error);
    }
    return blob;
  }

  // -- transport --------------------------------------------------------------------------------

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {};
    if (options.auth !== false) {
      if (!this.accessToken) throw new MatrixApiError(401, "M_MISSING_TOKEN", "Not logged in");
      headers["Authorization"] = `Bearer ${this.accessToken}`;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs ?? this.requestTimeoutMs);
    const onAbort = () => controller.abort();
    options.signal?.addEventListener("abort", onAbort);

    let response: Response;
    let text: string;
    try {
      if (options.signal?.aborted) throw new DOMException("Aborted", "AbortError");
      response = await this.fetchImpl(url.toString(), {
        method,
        headers,
        body,
        signal: controller.signal,
        cache: "no-store",
      });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw new DOMException("Aborted", "AbortError");
      throw new NetworkError(timedOut ? "The request timed out" : "The server could not be reached", error);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }

    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      const errorBody = isObject(parsed) ? parsed : {};
      const errcode = typeof errorBody["errcode"] === "string" ? errorBody["errcode"] : "M_UNKNOWN";
      const message =
        typeof errorBody["error"] === "string" ? errorBody["error"] : `HTTP ${response.status}`;
      throw new MatrixApiError(response.status, errcode, message, errorBody);
    }
    if (!isObject(parsed) && !Array.isArray(parsed)) {
      // A 200 that is not JSON: a proxy's page, or a web server that is not a homeserver.
      throw new MatrixApiError(response.status, "M_NOT_JSON", "The server did not answer JSON");
    }
    return parsed as T;
  }
}

export type UploadProgress = (loaded: number, total: number) => void;

function xhrUpload(
  url: string,
  headers: Record<string, string>,
  body: Blob,
  onProgress: UploadProgress | undefined,
  signal: AbortSignal | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    const onAbort = () => xhr.abort();
    const done = () => signal?.removeEventListener("abort", onAbort);
    xhr.upload.onprogress = (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : body.size);
    xhr.onload = () => {
      done();
      resolve({ status: xhr.status, text: xhr.responseText });
    };
    xhr.onerror = () => {
      done();
      reject(new NetworkError("The server could not be reached"));
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      done();
      reject(new DOMException("Aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort);
    xhr.send(body);
  });
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiError(status: number, parsed: unknown): MatrixApiError {
  const body = isObject(parsed) ? parsed : {};
  const errcode = typeof body["errcode"] === "string" ? body["errcode"] : "M_UNKNOWN";
  const message = typeof body["error"] === "string" ? body["error"] : `HTTP ${status}`;
  return new MatrixApiError(status, errcode, message, body);
}

function viaQuery(via: string[]): string {
  if (via.length === 0) return "";
  return "?" + via.map((server) => `server_name=${enc(server)}&via=${enc(server)}`).join("&");
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
