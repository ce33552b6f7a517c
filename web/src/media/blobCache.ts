// Authenticated media as object URLs: each URL is fetched once (with the access token) into a
// Blob and handed out as a `blob:` URL to whoever acquires it; when the last holder releases it
// (after a short grace, so a re-render or a scroll back does not fetch again) the object URL is
// revoked and the Blob can be freed.

export interface BlobCacheOptions {
  fetchBlob: (url: string) => Promise<Blob>;
  /** How long an unused entry is kept before it is revoked. */
  graceMs?: number;
  createObjectURL?: (blob: Blob) => string;
  revokeObjectURL?: (url: string) => void;
}

interface Entry {
  users: number;
  promise: Promise<string>;
  objectUrl?: string;
  timer?: ReturnType<typeof setTimeout>;
}

export class BlobCache {
  private readonly entries = new Map<string, Entry>();
  private readonly graceMs: number;
  private readonly create: (blob: Blob) => string;
  private readonly revoke: (url: string) => void;

  constructor(private readonly options: BlobCacheOptions) {
    this.graceMs = options.graceMs ?? 30_000;
    this.create = options.createObjectURL ?? ((blob) => URL.createObjectURL(blob));
    this.revoke = options.revokeObjectURL ?? ((url) => URL.revokeObjectURL(url));
  }

  /** An object URL for `url`; every acquire must be paired with a release. A failed fetch is
   *  not kept, so the next acquire tries again. */
  acquire(url: string): Promise<string> {
    let entry = this.entries.get(url);
    if (entry) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
      entry.users += 1;
      return entry.promise;
    }
    const created: Entry = { users: 1, promise: Promise.resolve("") };
    created.promise = this.options.fetchBlob(url).then(
      (blob) => {
        const objectUrl = this.create(blob);
        if (this.entries.get(url) !== created) {
          // Dropped while loading (released, or cleared): nobody will revoke it later.
          this.revoke(objectUrl);
        } else {
          created.objectUrl = objectUrl;
        }
        return objectUrl;
      },
      (error: unknown) => {
        if (this.entries.get(url) === created) this.entries.delete(url);
        throw error;
      },
    );
    this.entries.set(url, created);
    entry = created;
    return entry.promise;
  }

  release(url: string): void {
    const entry = this.entries.get(url);
    if (!entry || entry.users === 0) return;
    entry.users -= 1;
    if (entry.users > 0) return;
    const drop = () => {
      if (this.entries.get(url) !== entry || entry.users > 0) return;
      this.entries.delete(url);
      if (entry.objectUrl) this.revoke(entry.objectUrl);
    };
    if (this.graceMs <= 0) drop();
    else entry.timer = setTimeout(drop, this.graceMs);
  }

  /** Revokes everything (log out). */
  clear(): void {
    for (const entry of this.entries.values()) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      if (entry.objectUrl) this.revoke(entry.objectUrl);
    }
    this.entries.clear();
  }

  /** How many URLs are held (for tests). */
  get size(): number {
    return this.entries.size;
  }
}
