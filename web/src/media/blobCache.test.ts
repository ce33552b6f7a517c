import { afterEach, describe, expect, it, vi } from "vitest";
import { BlobCache } from "./blobCache";

function setup(graceMs = 0) {
  const fetched: string[] = [];
  const revoked: string[] = [];
  let n = 0;
  let fail = false;
  const cache = new BlobCache({
    graceMs,
    fetchBlob: async (url) => {
      fetched.push(url);
      if (fail) throw new Error("offline");
      return new Blob([url]);
    },
    createObjectURL: () => `blob:${++n}`,
    revokeObjectURL: (url) => revoked.push(url),
  });
  return { cache, fetched, revoked, failNext: (on: boolean) => (fail = on) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("BlobCache", () => {
  it("fetches the same URL once for every holder, and revokes it after the last release", async () => {
    const { cache, fetched, revoked } = setup();
    const [a, b] = await Promise.all([cache.acquire("u1"), cache.acquire("u1")]);
    const c = await cache.acquire("u1");
    expect(a).toBe("blob:1");
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(fetched).toEqual(["u1"]);
    cache.release("u1");
    cache.release("u1");
    expect(revoked).toEqual([]);
    cache.release("u1");
    expect(revoked).toEqual(["blob:1"]);
    expect(cache.size).toBe(0);
    // Fetched anew once it was let go.
    expect(await cache.acquire("u1")).toBe("blob:2");
    expect(fetched).toEqual(["u1", "u1"]);
  });

  it("keeps an unused entry for the grace period, and a new holder keeps it alive", async () => {
    vi.useFakeTimers();
    const { cache, fetched, revoked } = setup(1000);
    await cache.acquire("u1");
    cache.release("u1");
    vi.advanceTimersByTime(500);
    expect(await cache.acquire("u1")).toBe("blob:1");
    vi.advanceTimersByTime(5000);
    expect(revoked).toEqual([]);
    cache.release("u1");
    vi.advanceTimersByTime(999);
    expect(revoked).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(revoked).toEqual(["blob:1"]);
    expect(fetched).toEqual(["u1"]);
  });

  it("revokes an object URL that arrives after its last holder left", async () => {
    const { cache, revoked } = setup();
    const pending = cache.acquire("u1");
    cache.release("u1");
    expect(await pending).toBe("blob:1");
    expect(revoked).toEqual(["blob:1"]);
    expect(cache.size).toBe(0);
  });

  it("does not keep a failed fetch: the next acquire tries again", async () => {
    const { cache, fetched, failNext } = setup();
    failNext(true);
    await expect(cache.acquire("u1")).rejects.toThrow("offline");
    cache.release("u1");
    failNext(false);
    expect(await cache.acquire("u1")).toBe("blob:1");
    expect(fetched).toEqual(["u1", "u1"]);
  });

  it("revokes everything on clear", async () => {
    const { cache, revoked } = setup(60_000);
    await cache.acquire("u1");
    await cache.acquire("u2");
    cache.release("u2");
    cache.clear();
    expect(revoked.sort()).toEqual(["blob:1", "blob:2"]);
    expect(cache.size).toBe(0);
  });
});
