// Typing notices while composing: `typing: true` with a timeout when the user types (renewed
// before it runs out), `typing: false` when the text is sent, emptied, or the composer is left.

export const TYPING_TIMEOUT_MS = 30_000;
/** Renew this long before the server's timeout would end the notice. */
const RENEW_MARGIN_MS = 5_000;

export class TypingNotifier {
  private sentAt: number | undefined;

  constructor(
    private readonly send: (typing: boolean, timeoutMs: number) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The composer's text changed. */
  input(text: string): void {
    if (text.trim() === "") {
      this.stop();
      return;
    }
    const now = this.now();
    if (this.sentAt !== undefined && now - this.sentAt < TYPING_TIMEOUT_MS - RENEW_MARGIN_MS) return;
    this.sentAt = now;
    this.post(true);
  }

  /** Sent, emptied, blurred or closed. */
  stop(): void {
    if (this.sentAt === undefined) return;
    this.sentAt = undefined;
    this.post(false);
  }

  private post(typing: boolean): void {
    // Best effort: a lost notice times out on the server by itself.
    void this.send(typing, TYPING_TIMEOUT_MS).catch(() => undefined);
  }
}
