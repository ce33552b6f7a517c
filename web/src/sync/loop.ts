// The sync loop: long-polls /sync from the stored token, writes each response through the
// reducer into the store, backs off on errors, and says whether we are online.

import { MatrixApiError, type MatrixApi } from "../api/client";
import type { Store } from "../store/store";
import { affectedRoomIds, reduceSync } from "./reducer";

export type SyncStatus = "connecting" | "online" | "offline" | "stopped" | "loggedOut";

/** Our filter: enough recent history per room to fill a screen, full member lists. */
export const SYNC_FILTER = JSON.stringify({ room: { timeline: { limit: 50 } } });

export type Sleep = (ms: number, wake: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, wake) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

export interface SyncLoopOptions {
  api: Pick<MatrixApi, "sync">;
  store: Store;
  userId: string;
  timeoutMs?: number;
  filter?: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  sleep?: Sleep;
  onStatus?: (status: SyncStatus, error?: unknown) => void;
  /** After each response was stored. */
  onSynced?: () => void;
}

/** A /sync with `since` refused in a way that retrying the same request cannot fix: a 4xx
 *  other than 401 (the access token: logged out), 408 (a timeout) and 429 (rate limited).
 *  Servers answer an unknown or malformed token variously (M_INVALID_PARAM, M_UNKNOWN,
 *  M_BAD_JSON with 400, or a 404), so the errcode is not looked at. */
function isRejectedSince(error: unknown): boolean {
  return (
    error instanceof MatrixApiError &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 401 &&
    error.status !== 408 &&
    error.status !== 429
  );
}

export class SyncLoop {
  status: SyncStatus = "stopped";
  lastError: unknown = undefined;
  private abort: AbortController | undefined;
  private wakeController = new AbortController();
  private running: Promise<void> = Promise.resolve();
  private failures = 0;

  constructor(private readonly options: SyncLoopOptions) {}

  get isRunning(): boolean {
    return this.abort !== undefined;
  }

  /** Starts the loop; a loop still stopping finishes first (each run has its own signal). */
  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    this.failures = 0;
    this.setStatus("connecting");
    this.running = this.running.then(() => this.run(abort.signal));
  }

  async stop(): Promise<void> {
    const abort = this.abort;
    this.abort = undefined;
    abort?.abort();
    this.wakeController.abort();
    await this.running;
    if (!this.abort) this.setStatus("stopped");
  }

  /** Cuts a backoff short (the browser says the network is back, the user pressed retry). */
  wake(): void {
    this.wakeController.abort();
  }

  /** One /sync round trip, stored. Exposed for tests and for a manual refresh. */
  async syncOnce(signal?: AbortSignal): Promise<void> {
    const { api, store, userId } = this.options;
    let since = await store.getSyncToken();
    const request = (from: string | undefined) =>
      api.sync({
        since: from,
        // The first sync answers at once, so that a new login shows something quickly.
        timeoutMs: from ? (this.options.timeoutMs ?? 30_000) : 0,
        filter: this.options.filter ?? SYNC_FILTER,
        signal,
      });
    let response;
    try {
      response = await request(since);
    } catch (error) {
      if (since === undefined || signal?.aborted || !isRejectedSince(error)) throw error;
      // The server refuses our `since` (a token from before a server reset or a database
      // restore, or one it cannot parse): retrying it would fail forever. Start over with an
      // initial sync once; its next_batch replaces the stored token.
      since = undefined;
      response = await request(undefined);
    }
    await store.applySync(affectedRoomIds(response), (previous) =>
      reduceSync(response, userId, previous, { initial: since === undefined }),
    );
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.syncOnce(signal);
        if (signal.aborted) return;
        this.failures = 0;
        this.lastError = undefined;
        this.setStatus("online");
        this.options.onSynced?.();
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof MatrixApiError && error.status === 401) {
          // The token is gone (logged out elsewhere, deactivated): nothing to retry.
          if (this.abort?.signal === signal) this.abort = undefined;
          this.lastError = error;
          this.setStatus("loggedOut", error);
          return;
        }
        this.lastError = error;
        this.failures += 1;
        this.setStatus("offline", error);
        await this.backoff(error);
      }
    }
  }

  private async backoff(error: unknown): Promise<void> {
    const initial = this.options.initialBackoffMs ?? 1_000;
    const max = this.options.maxBackoffMs ?? 30_000;
    let delay = Math.min(max, initial * 2 ** Math.min(this.failures - 1, 16));
    if (error instanceof MatrixApiError && error.retryAfterMs !== undefined) {
      delay = Math.max(delay, error.retryAfterMs);
    }
    this.wakeController = new AbortController();
    await (this.options.sleep ?? realSleep)(delay, this.wakeController.signal);
  }

  private setStatus(status: SyncStatus, error?: unknown): void {
    if (status === this.status && status !== "offline") return;
    this.status = status;
    this.options.onStatus?.(status, error);
  }
}
