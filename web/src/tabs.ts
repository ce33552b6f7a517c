// Tabs of one browser share the IndexedDB store. Only one of them, the leader, runs the sync
// loop and sends the outbox: two loops applying /sync responses to the same store would apply
// some twice or move the token backwards. The others render from the store and hear what
// changed, and the leader's online/offline state, over a BroadcastChannel. The leader is chosen
// with the Web Locks API: whoever holds the lock leads, and when its tab closes the browser
// hands the lock to the next tab waiting.

import type { SyncStatus } from "./sync/loop";

export type StoreChange = "session" | "sync" | "timeline" | "outbox" | "rooms";

export type TabMessage =
  | { type: "changed"; kind: StoreChange }
  | { type: "status"; status: SyncStatus }
  | { type: "askStatus" };

/** The part of BroadcastChannel used here. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  close(): void;
}

/** The part of navigator.locks used here. */
export interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}

/** Messages between the tabs of one store. Without BroadcastChannel it carries nothing. */
export class TabBus {
  private readonly listeners = new Set<(message: TabMessage) => void>();
  private readonly receive = (event: { data: unknown }) => {
    if (!isTabMessage(event.data)) return;
    for (const listener of [...this.listeners]) listener(event.data);
  };

  constructor(private readonly channel: ChannelLike | undefined) {
    channel?.addEventListener("message", this.receive);
  }

  /** The bus of store `name` in this browser. */
  static forStore(name: string): TabBus {
    const channel =
      typeof BroadcastChannel === "function" ? new BroadcastChannel(`${name}:tabs`) : undefined;
    return new TabBus(channel);
  }

  /** Sent to the other tabs (a tab does not hear its own messages). */
  post(message: TabMessage): void {
    this.channel?.postMessage(message);
  }

  onMessage(listener: (message: TabMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.channel?.removeEventListener("message", this.receive);
    this.channel?.close();
    this.listeners.clear();
  }
}

function isTabMessage(data: unknown): data is TabMessage {
  return typeof data === "object" && data !== null && typeof (data as { type?: unknown }).type === "string";
}

/**
 * Holds the lock `name` for as long as this tab is started: `onLead` runs once the lock is
 * ours. Without the Web Locks API (old browsers, tests) every tab leads at once.
 */
export class Leadership {
  private release: (() => void) | undefined;
  private abort: AbortController | undefined;
  private leading = false;
  private readonly locks: LocksLike | undefined;

  /** `locks`: the browser's navigator.locks unless given; null for none. */
  constructor(
    private readonly name: string,
    locks?: LocksLike | null,
  ) {
    this.locks = locks === undefined ? browserLocks() : (locks ?? undefined);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(onLead: () => void): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    if (!this.locks) {
      this.leading = true;
      onLead();
      return;
    }
    this.locks
      .request(this.name, { signal: abort.signal }, () => {
        if (abort.signal.aborted) return Promise.resolve();
        this.leading = true;
        onLead();
        // Held until stop(): the browser frees it when the tab goes, too.
        return new Promise<void>((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => undefined); // stopped while still waiting for the lock
  }

  /** Gives the lead (or the place in the queue for it) to the other tabs. */
  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    this.leading = false;
    this.release?.();
    this.release = undefined;
  }
}

function browserLocks(): LocksLike | undefined {
  const nav = typeof navigator !== "undefined" ? (navigator as { locks?: LocksLike }) : undefined;
  return nav?.locks;
}
