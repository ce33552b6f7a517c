import { describe, expect, it } from "vitest";
import { FakeHomeserver } from "../test/fakeServer";
import { MatrixApi, MatrixApiError } from "./client";
import { downloadUrl, fitWithin, formatSize, parseMxc, thumbnailUrl } from "./media";

const BASE = "https://hs.example.org";

describe("mxc URIs", () => {
  it("parses server name and media ID", () => {
    expect(parseMxc("mxc://example.org/abcDEF_123-x")).toEqual({ serverName: "example.org", mediaId: "abcDEF_123-x" });
    expect(parseMxc("mxc://localhost:8448/m1")).toEqual({ serverName: "localhost:8448", mediaId: "m1" });
    expect(parseMxc("mxc://[::1]:8448/m1")).toEqual({ serverName: "[::1]:8448", mediaId: "m1" });
  });

  it("refuses what is not an mxc URI, or would make another path", () => {
    for (const bad of [
      undefined,
      42,
      "",
      "https://example.org/a",
      "mxc://example.org",
      "mxc://example.org/",
      "mxc:///m1",
      "mxc://example.org/a/b",
      "mxc://example.org/../../_matrix/client/v3/logout",
      "mxc://exa mple.org/m1",
      "mxc://example.org/m1?x=1",
    ]) {
      expect(parseMxc(bad), String(bad)).toBeUndefined();
    }
  });

  it("builds the authenticated download and thumbnail URLs", () => {
    expect(downloadUrl(BASE, "mxc://example.org/m1")).toBe(`${BASE}/_matrix/client/v1/media/download/example.org/m1`);
    expect(downloadUrl(BASE, "mxc://example.org/m1", "my file #1.pdf")).toBe(
      `${BASE}/_matrix/client/v1/media/download/example.org/m1/my%20file%20%231.pdf`,
    );
    expect(downloadUrl(BASE, "mxc://[::1]:8448/m1")).toBe(`${BASE}/_matrix/client/v1/media/download/%5B%3A%3A1%5D%3A8448/m1`);
    expect(thumbnailUrl(BASE, "mxc://example.org/m1", 320, 240.4)).toBe(
      `${BASE}/_matrix/client/v1/media/thumbnail/example.org/m1?width=320&height=240&method=scale`,
    );
    expect(thumbnailUrl(BASE, "mxc://example.org/m1", 96, 96, "crop")).toContain("method=crop");
    expect(downloadUrl(BASE, "https://evil.example/x")).toBeUndefined();
    expect(thumbnailUrl(BASE, "nope", 1, 1)).toBeUndefined();
  });

  it("fits an image into a box without enlarging it", () => {
    expect(fitWithin({ w: 1600, h: 1200 }, 320, 240)).toEqual({ width: 320, height: 240 });
    expect(fitWithin({ w: 1000, h: 2000 }, 320, 240)).toEqual({ width: 120, height: 240 });
    expect(fitWithin({ w: 100, h: 50 }, 320, 240)).toEqual({ width: 100, height: 50 });
    expect(fitWithin({ w: "100", h: 50 }, 320, 240)).toBeUndefined();
    expect(fitWithin(undefined, 320, 240)).toBeUndefined();
  });

  it("formats sizes", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(1536)).toBe("1.5 KB");
    expect(formatSize(5 * 1024 * 1024)).toBe("5.0 MB");
    expect(formatSize(undefined)).toBe("");
  });
});

describe("MatrixApi media", () => {
  it("uploads with the token and fetches the media back with the token", async () => {
    const server = new FakeHomeserver();
    const api = new MatrixApi({ baseUrl: BASE, accessToken: "tok", fetch: server.fetch });
    const { content_uri } = await api.upload(new Blob(["hello"], { type: "text/plain" }), { fileName: "a.txt" });
    expect(content_uri).toBe("mxc://example.org/media1");
    const blob = await api.fetchMedia(downloadUrl(BASE, content_uri)!);
    expect(await blob.text()).toBe("hello");
    const get = server.requests.at(-1)!;
    expect(get.headers["Authorization"]).toBe("Bearer tok");
    await expect(api.fetchMedia(downloadUrl(BASE, "mxc://example.org/missing")!)).rejects.toBeInstanceOf(MatrixApiError);
  });
});
