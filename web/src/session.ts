// One logged-in account: the API client, the store, the sync loop and the outbox, wired
// together, plus the few multi-step actions of the UI (create a server, join by address...).
// The UI reads everything from the store; actions here write through the server and /sync.

import {
  EMAIL_STAGE,
  EmailVerificationNeeded,
  MatrixApi,
  MatrixApiError,
  NetworkError,
  RegistrationStagesError,
  isAbort,
  type FetchLike,
  type Session,
} from "./api/client";
import type { CreateRoomRequest, HierarchyRoom, JsonObject, RoomEvent, UiaResponse } from "./api/types";
import { downloadUrl, thumbnailUrl } from "./api/media";
import { attachmentContent, fileNameOf } from "./media/attach";
import { BlobCache } from "./media/blobCache";
import { Outbox } from "./outbox/outbox";
import type { RoomRecord } from "./store/schema";
import type { Store } from "./store/store";
import { SyncLoop, type SyncStatus } from "./sync/loop";
import { Leadership, type LocksLike, type TabMessage } from "./tabs";
import { editContent, reactionContent, replyContent, type ReactionSummary } from "./ui/relations";

export type StatusListener = (status: SyncStatus) => void;

export interface SpaceChildInfo {
  room: HierarchyRoom;
  via: string[];
}

/** The server part of a user ID: where rooms we create live, and what `via` should name. */
export function serverNameOf(userId: string): string {
  return userId.slice(userId.indexOf(":") + 1);
}

export async function logIn(store: Store, baseUrl: string, user: string, password: string, fetch?: FetchLike): Promise<Session> {
  const api = new MatrixApi({ baseUrl, fetch });
  return saveSession(store, api.baseUrl, await api.login(user, password, deviceName()));
}

export async function signUp(store: Store, baseUrl: string, user: string, password: string, fetch?: FetchLike): Promise<Session> {
  const api = new MatrixApi({ baseUrl, fetch });
  return saveSession(store, api.baseUrl, await api.register(user, password, deviceName()));
}

/** A random client_secret for /requestToken: [0-9a-zA-Z.=_-], 32 characters. */
export function newClientSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A sign-up that waits for an email address to be validated (signUp threw
 * EmailVerificationNeeded): send the mail, then retry /register with the threepid credentials
 * until the user has followed the link. `check` is safe to call from a button and a poll at once.
 */
export class EmailSignUp {
  readonly optional: boolean;
  email: string | undefined;
  sid: string | undefined;
  /** The send_attempt of the last mail asked for (for the current address). */
  sendAttempt = 0;
  private readonly api: MatrixApi;
  private uiaSession: string | undefined;
  private clientSecret = newClientSecret();
  private inFlight: Promise<Session | undefined> | undefined;
  private done: Session | undefined;

  constructor(
    private readonly store: Store,
    baseUrl: string,
    private readonly user: string,
    private readonly password: string,
    needed: EmailVerificationNeeded,
    fetch?: FetchLike,
  ) {
    this.api = new MatrixApi({ baseUrl, fetch });
    this.optional = needed.optional;
    this.uiaSession = needed.session;
  }

  /** Mails a validation link to `email` (again, with a higher send_attempt, for the same one). */
  async sendMail(email: string): Promise<void> {
    const address = email.trim();
    if (address !== this.email) {
      // A new address is a new validation: its own secret, attempts counted from 1.
      this.clientSecret = newClientSecret();
      this.sendAttempt = 0;
      this.sid = undefined;
    }
    this.email = address;
    const attempt = this.sendAttempt + 1;
    const { sid } = await this.api.requestRegisterEmailToken(address, this.clientSecret, attempt);
    this.sendAttempt = attempt;
    this.sid = sid;
  }

  async resend(): Promise<void> {
    if (this.email === undefined) throw new Error("No email address yet");
    await this.sendMail(this.email);
  }

  /** Forgets the address (to type another one); a mail already sent stays unused. */
  reset(): void {
    this.email = undefined;
    this.sid = undefined;
    this.sendAttempt = 0;
  }

  /**
   * Retries the registration with the address's validation: the Session once the link was
   * followed, undefined while it has not been (the server's 401). Other errors are thrown.
   */
  check(): Promise<Session | undefined> {
    if (this.done) return Promise.resolve(this.done);
    this.inFlight ??= this.attempt().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Registers without an address (only when the server offers the dummy flow too). */
  async skip(): Promise<Session> {
    if (this.done) return this.done;
    const auth: JsonObject = { type: "m.login.dummy" };
    if (this.uiaSession) auth["session"] = this.uiaSession;
    return this.finish(await this.register(auth));
  }

  /**
   * Calls `check` every `intervalMs` (after a 429, when the server says) until it registers or
   * fails for good; network failures are retried. Returns the function that stops it.
   */
  poll(
    onSession: (session: Session) => void,
    onError: (error: unknown) => void,
    intervalMs = 3000,
  ): () => void {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = (ms: number) => {
      if (!stopped) timer = setTimeout(tick, ms);
    };
    const tick = async () => {
      try {
        const session = await this.check();
        if (stopped) return;
        if (session) {
          stopped = true;
          onSession(session);
        } else schedule(intervalMs);
      } catch (error) {
        if (stopped) return;
        if (error instanceof NetworkError) schedule(intervalMs);
        else if (error instanceof MatrixApiError && error.status === 429) {
          schedule(Math.max(intervalMs, error.retryAfterMs ?? 0));
        } else {
          stopped = true;
          onError(error);
        }
      }
    };
    schedule(intervalMs);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }

  private async attempt(): Promise<Session | undefined> {
    if (this.sid === undefined) return undefined;
    const auth: JsonObject = {
      type: EMAIL_STAGE,
      threepid_creds: { sid: this.sid, client_secret: this.clientSecret },
    };
    if (this.uiaSession) auth["session"] = this.uiaSession;
    try {
      return await this.finish(await this.register(auth));
    } catch (error) {
      if (!(error instanceof MatrixApiError) || error.status !== 401) throw error;
      const uia = error.body as UiaResponse;
      if (!uia.flows) throw error; // a 401 that is not user-interactive auth
      if (uia.session) this.uiaSession = uia.session;
      // Not validated yet: the server answers 401 (M_UNAUTHORIZED, M_THREEPID_AUTH_FAILED...)
      // without the stage in `completed`. With it there, it wants stages we cannot do.
      if (uia.completed?.includes(EMAIL_STAGE)) {
        throw new RegistrationStagesError(uia.flows.map((flow) => flow.stages), uia.error);
      }
      return undefined;
    }
  }

  private register(auth: JsonObject) {
    return this.api.registerWithAuth(this.user, this.password, auth, deviceName());
  }

  private async finish(answer: { user_id: string; access_token: string; device_id: string }): Promise<Session> {
    this.done ??= await saveSession(this.store, this.api.baseUrl, answer);
    return this.done;
  }
}

async function saveSession(
  store: Store,
  baseUrl: string,
  answer: { user_id: string; access_token: string; device_id: string },
): Promise<Session> {
  const session: Session = {
    baseUrl,
    userId: answer.user_id,
    accessToken: answer.access_token,
    deviceId: answer.device_id,
  };
  await store.setSession(session);
  return session;
}

function deviceName(): string {
  return typeof navigator !== "undefined" && navigator.userAgent.includes("Mobile")
    ? "Web (mobile)"
    : "Web";
}

export class ChatSession {
  readonly api: MatrixApi;
  readonly sync: SyncLoop;
  readonly outbox: Outbox;
  /** Authenticated media (thumbnails, images, files) as object URLs. */
  readonly media: BlobCache;
  readonly serverName: string;
  /** Whether this tab runs the sync loop and sends the outbox (see tabs.ts). */
  private readonly leadership: Leadership;
  /** While another tab leads: its sync status, as it last told us. */
  private leaderStatus: SyncStatus = "connecting";
  private statusListeners = new Set<StatusListener>();
  private cleanup: (() => void)[] = [];

  constructor(
    readonly store: Store,
    readonly session: Session,
    fetch?: FetchLike,
    locks?: LocksLike | null,
  ) {
    this.api = MatrixApi.forSession(session, fetch);
    this.serverName = serverNameOf(session.userId);
    this.leadership = new Leadership(`${store.name}:leader`, locks);
    this.outbox = new Outbox({
      store,
      api: this.api,
      userId: session.userId,
      canSend: () => this.leadership.isLeader,
    });
    this.media = new BlobCache({ fetchBlob: (url) => this.api.fetchMedia(url) });
    this.sync = new SyncLoop({
      api: this.api,
      store,
      userId: session.userId,
      onStatus: (status) => {
        if (!this.leadership.isLeader) return;
        // "stopped" is this tab going away, not the network: the next leader will say its own.
        if (status !== "stopped") this.store.tabs.post({ type: "status", status });
        this.tellStatus(status);
      },
      // Each answered /sync proves the network is there: send what waits.
      onSynced: () => void this.outbox.flush().catch(() => undefined),
    });
  }

  get status(): SyncStatus {
    return this.leadership.isLeader ? this.sync.status : this.leaderStatus;
  }

  get isLeader(): boolean {
    return this.leadership.isLeader;
  }

  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private tellStatus(status: SyncStatus): void {
    for (const listener of [...this.statusListeners]) listener(status);
  }

  /** Starts syncing and sending once this tab leads; until then it follows the leading tab. */
  start(): void {
    this.cleanup.push(this.store.tabs.onMessage((message) => this.onTabMessage(message)));
    this.cleanup.push(
      this.store.subscribe((kind, fromOtherTab) => {
        // Another tab queued something: the leader sends it.
        if (kind === "outbox" && fromOtherTab) void this.outbox.flush().catch(() => undefined);
      }),
    );
    this.store.tabs.post({ type: "askStatus" });
    this.leadership.start(() => {
      this.sync.start();
      void this.outbox.flush().catch(() => undefined);
    });
    if (typeof window !== "undefined") {
      const online = () => {
        if (this.leadership.isLeader) this.sync.wake();
        void this.outbox.flush().catch(() => undefined);
      };
      window.addEventListener("online", online);
      this.cleanup.push(() => window.removeEventListener("online", online));
    }
  }

  private onTabMessage(message: TabMessage): void {
    if (message.type === "askStatus" && this.leadership.isLeader) {
      this.store.tabs.post({ type: "status", status: this.sync.status });
    } else if (message.type === "status" && !this.leadership.isLeader) {
      this.leaderStatus = message.status;
      this.tellStatus(message.status);
    }
  }

  /** Stops syncing, then lets another tab lead (after our last write, not during it). */
  async stop(): Promise<void> {
    for (const undo of this.cleanup.splice(0)) undo();
    this.media.clear();
    await this.sync.stop();
    this.leadership.stop();
  }

  /** Ends the session on the server (if it can be reached) and forgets it on this device. */
  async logOut(): Promise<void> {
    await this.stop();
    try {
      await this.api.logout();
    } catch {
      // Offline, or the token is already gone: the device forgets it all the same.
    }
    await this.store.clear();
  }

  // -- actions ----------------------------------------------------------------------------------

  async sendText(roomId: string, text: string): Promise<void> {
    await this.outbox.sendText(roomId, text);
  }

  /** An image or file: stored in the outbox with its Blob, uploaded and sent when online. */
  async sendFile(roomId: string, file: Blob): Promise<void> {
    const fileName = fileNameOf(file);
    const content = await attachmentContent(file, fileName);
    await this.outbox.sendAttachment(roomId, file, fileName, content);
  }

  /** The authenticated URL of a media item (undefined for a URI that is not mxc://). */
  mediaUrl(mxc: unknown, thumbnail?: { width: number; height: number }): string | undefined {
    if (typeof mxc !== "string") return undefined;
    return thumbnail
      ? thumbnailUrl(this.api.baseUrl, mxc, thumbnail.width, thumbnail.height, "scale")
      : downloadUrl(this.api.baseUrl, mxc);
  }

  async sendReply(roomId: string, text: string, replyTo: string): Promise<void> {
    await this.outbox.send(roomId, replyContent(text, replyTo));
  }

  async sendEdit(roomId: string, text: string, original: string): Promise<void> {
    await this.outbox.send(roomId, editContent(text, original));
  }

  async deleteMessage(roomId: string, eventId: string): Promise<void> {
    await this.outbox.redact(roomId, eventId);
  }

  /** Adds our reaction with `key`, or takes it back (redacts it, or drops it from the outbox). */
  async toggleReaction(roomId: string, eventId: string, key: string, mine?: ReactionSummary["mine"]): Promise<void> {
    if (mine?.txnId) await this.outbox.discard(mine.txnId);
    else if (mine?.eventId) await this.outbox.redact(roomId, mine.eventId);
    else await this.outbox.send(roomId, reactionContent(eventId, key), "m.reaction");
  }

  /** Best effort, not queued: a later receipt covers a lost one. */
  async markRead(roomId: string, eventId: string): Promise<void> {
    await this.api.sendReadReceipt(roomId, eventId);
  }

  async setTyping(roomId: string, typing: boolean, timeoutMs: number): Promise<void> {
    await this.api.setTyping(roomId, this.session.userId, typing, timeoutMs);
  }

  /** A "server" is a space with a first `general` channel. */
  async createServer(name: string, options: { isPublic: boolean; alias?: string }): Promise<string> {
    const request: CreateRoomRequest = {
      name,
      preset: options.isPublic ? "public_chat" : "private_chat",
      visibility: "private",
      creation_content: { type: "m.space" },
      // In a space only its admins post state (children); nobody chats in the space itself.
      power_level_content_override: { events_default: 100, invite: options.isPublic ? 0 : 50 },
    };
    if (options.alias) request.room_alias_name = options.alias;
    const { room_id: spaceId } = await this.api.createRoom(request);
    await this.createChannel(spaceId, "general", options.isPublic);
    return spaceId;
  }

  /** A channel: a room that names the space as its parent, added as the space's child. */
  async createChannel(spaceId: string, name: string, spaceIsPublic?: boolean): Promise<string> {
    const space = await this.store.getRoom(spaceId);
    const isPublic = spaceIsPublic ?? space?.joinRule === "public";
    const via = [this.serverName];
    const initialState: CreateRoomRequest["initial_state"] = [
      { type: "m.space.parent", state_key: spaceId, content: { via, canonical: true } },
    ];
    if (!isPublic) {
      // Members of the space may join without an invite (room versions 8 and later).
      initialState.push({
        type: "m.room.join_rules",
        state_key: "",
        content: { join_rule: "restricted", allow: [{ type: "m.room_membership", room_id: spaceId }] },
      });
    }
    const { room_id: roomId } = await this.api.createRoom({
      name,
      preset: isPublic ? "public_chat" : "private_chat",
      visibility: "private",
      initial_state: initialState,
    });
    await this.api.sendState(spaceId, "m.space.child", roomId, { via, suggested: true });
    return roomId;
  }

  /** Joins a room or space by alias (#name:server) or ID; a space's channels are joined too. */
  async joinByAddress(address: string): Promise<string> {
    const trimmed = address.trim();
    const via = trimmed.startsWith("!") && trimmed.includes(":") ? [serverNameOf(trimmed)] : [];
    const { room_id: roomId } = await this.api.join(trimmed, via);
    let children: SpaceChildInfo[] = [];
    try {
      children = await this.spaceChildren(roomId);
    } catch {
      return roomId; // not a space, or no hierarchy API: the room itself is joined
    }
    await Promise.allSettled(
      children
        .filter((c) => c.room.join_rule !== "invite")
        .map((c) => this.api.join(c.room.room_id, c.via)),
    );
    return roomId;
  }

  /** The rooms a space lists, from the server: includes those we have not joined. */
  async spaceChildren(spaceId: string): Promise<SpaceChildInfo[]> {
    const { rooms } = await this.api.hierarchy(spaceId);
    const space = rooms.find((r) => r.room_id === spaceId);
    if (!space || space.room_type !== "m.space") return [];
    const via = new Map(
      space.children_state.map((s) => [
        s.state_key,
        Array.isArray(s.content["via"]) ? (s.content["via"] as string[]) : [],
      ]),
    );
    return rooms
      .filter((r) => r.room_id !== spaceId)
      .map((room) => ({ room, via: via.get(room.room_id) ?? [] }));
  }

  async joinRoom(roomId: string, via: string[] = []): Promise<void> {
    await this.api.join(roomId, via);
  }

  async leaveRoom(roomId: string): Promise<void> {
    await this.api.leave(roomId);
  }

  /** Leaves a server: the given channels of it first, then its space. The store follows from
   *  /sync (left rooms are dropped there). Throws if the space or any channel could not be left. */
  async leaveServer(spaceId: string, channelIds: string[]): Promise<void> {
    const results = await Promise.allSettled(channelIds.map((id) => this.api.leave(id)));
    await this.api.leave(spaceId);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) {
      throw new Error(
        `Left the server, but ${failed.length} of its channels could not be left: ${describeError(failed[0]!.reason)}`,
      );
    }
  }

  /** Renames a room or space (its `m.room.name` state); the new name arrives with /sync. */
  async renameRoom(roomId: string, name: string): Promise<void> {
    await this.api.sendState(roomId, "m.room.name", "", { name });
  }

  /** A group: a private room outside any server, with its first people invited at once. */
  async createGroup(name: string, invite: string[]): Promise<string> {
    const { room_id: roomId } = await this.api.createRoom({
      name,
      preset: "private_chat",
      visibility: "private",
      invite,
    });
    return roomId;
  }

  /** A direct chat: a private room with the other user invited, recorded in m.direct. */
  async startDirectChat(userId: string): Promise<string> {
    const { room_id: roomId } = await this.api.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [userId],
      visibility: "private",
    });
    await this.addDirect(userId, roomId);
    return roomId;
  }

  async acceptInvite(room: RoomRecord): Promise<void> {
    await this.api.join(room.roomId);
    if (room.isDirectInvite && room.inviter) await this.addDirect(room.inviter, room.roomId);
  }

  private async addDirect(userId: string, roomId: string): Promise<void> {
    const stored = await this.store.getAccountData("m.direct");
    const content: JsonObject = { ...(stored?.content ?? {}) };
    const rooms = Array.isArray(content[userId]) ? (content[userId] as string[]) : [];
    if (!rooms.includes(roomId)) content[userId] = [...rooms, roomId];
    await this.api.setAccountData(this.session.userId, "m.direct", content);
  }

  /**
   * Older events of a room, from `token` backwards. What fits under the store's bound is kept
   * on the device; all of it is returned for the view.
   */
  async loadOlder(
    roomId: string,
    token: string,
    signal?: AbortSignal,
  ): Promise<{ events: RoomEvent[]; end: string | undefined }> {
    try {
      const page = await this.api.messages(roomId, { from: token, dir: "b", limit: 50, signal });
      await this.store.prependEvents(roomId, page.chunk, page.end);
      const end = page.chunk.length > 0 ? page.end : undefined;
      return { events: [...page.chunk].reverse(), end };
    } catch (error) {
      if (isAbort(error)) return { events: [], end: token };
      throw error;
    }
  }
}

/** What to tell the user when a step of the email sign-up failed. */
export function describeSignUpError(error: unknown): string {
  if (error instanceof MatrixApiError) {
    switch (error.errcode) {
      case "M_THREEPID_IN_USE":
        return "This email address is already used by an account on this server. Log in, or use another address.";
      case "M_THREEPID_DENIED":
        return "This server does not accept this email address. Use another one.";
      case "M_USER_IN_USE":
        return "This username is taken. Go back and choose another one.";
    }
    if (error.status === 429) {
      const wait = error.retryAfterMs;
      return wait !== undefined
        ? `Too many attempts. Wait ${Math.ceil(wait / 1000)} seconds and try again.`
        : "Too many attempts. Wait a little and try again.";
    }
  }
  if (error instanceof NetworkError) return "The server could not be reached. Check your connection.";
  return describeError(error);
}

export function describeError(error: unknown): string {
  if (error instanceof MatrixApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
