import { describe, expect, it } from "vitest";
import { json } from "../test/fakeServer";
import { scripted } from "../test/fixtures";
import { MatrixApi, MatrixApiError } from "./client";
import {
  PasswordRequiredError,
  changeAvatar,
  deleteDevice,
  describeApiError,
  getAvatarUrl,
  getDisplayName,
  inviteUser,
  isUserId,
  listDevices,
  parseUserId,
  parseUserIds,
  renameDevice,
  setAvatarUrl,
  setDisplayName,
} from "./account";

function scriptedApi(...answers: Response[]) {
  const { fetch, calls } = scripted(...answers);
  return { api: new MatrixApi({ baseUrl: "https://hs", accessToken: "tok", fetch }), calls };
}

const UIA = { session: "S1", flows: [{ stages: ["m.login.password"] }], params: {} };

describe("user IDs", () => {
  it("accepts @localpart:server, with ports and IP literals", () => {
    for (const ok of ["@bob:example.org", "@b.o_b=1/x-y:hs", "@bob:localhost:8448", "@bob:[::1]:8008", "@bob:10.0.0.1", "@Bob:hs"]) {
      expect(isUserId(ok), ok).toBe(true);
    }
  });

  it("rejects what is not a user ID", () => {
    for (const bad of ["", "bob", "@bob", "bob:hs", "#room:hs", "!room:hs", "@:hs", "@bo b:hs", "@bob:", "@bob:hs:port", "@bob:h s", "@bob:hs:99999999"]) {
      expect(isUserId(bad), bad).toBe(false);
    }
    expect(isUserId(`@${"a".repeat(260)}:hs`)).toBe(false);
  });

  it("completes a bare name with our own server", () => {
    expect(parseUserId(" bob ", "hs")).toBe("@bob:hs");
    expect(parseUserId("@bob", "hs")).toBe("@bob:hs");
    expect(parseUserId("@bob:other.org", "hs")).toBe("@bob:other.org");
    expect(parseUserId("bob:", "hs")).toBeUndefined();
    expect(parseUserId("  ", "hs")).toBeUndefined();
    expect(parseUserId("bo b", "hs")).toBeUndefined();
  });

  it("reads a list of people separated by commas or spaces, once each", () => {
    expect(parseUserIds(" bob, @carol:other.org  dave,bob ", "hs")).toEqual({
      userIds: ["@bob:hs", "@carol:other.org", "@dave:hs"],
      invalid: [],
    });
    expect(parseUserIds("bob, eve:, @:x", "hs")).toEqual({ userIds: ["@bob:hs"], invalid: ["eve:", "@:x"] });
    expect(parseUserIds("  ", "hs")).toEqual({ userIds: [], invalid: [] });
  });
});

describe("invites", () => {
  it("posts the user ID to the room's invite endpoint", async () => {
    const { api, calls } = scriptedApi(json(200, {}));
    await inviteUser(api, "!space:hs", "@bob:hs");
    expect(calls).toEqual([
      { method: "POST", url: "https://hs/_matrix/client/v3/rooms/!space%3Ahs/invite", body: { user_id: "@bob:hs" }, auth: "Bearer tok" },
    ]);
  });

  it("passes the server's errcode and error on", async () => {
    const { api } = scriptedApi(json(403, { errcode: "M_FORBIDDEN", error: "You are not allowed to invite" }));
    const error = await inviteUser(api, "!r:hs", "@bob:hs").catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 403, errcode: "M_FORBIDDEN" });
    expect(describeApiError(error)).toBe("You are not allowed to invite (M_FORBIDDEN)");
  });
});

describe("profile", () => {
  it("reads and writes the display name", async () => {
    const { api, calls } = scriptedApi(json(200, { displayname: "Alice" }), json(200, {}));
    expect(await getDisplayName(api, "@alice:hs")).toBe("Alice");
    await setDisplayName(api, "@alice:hs", "Alice A.");
    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ["GET", "https://hs/_matrix/client/v3/profile/%40alice%3Ahs/displayname", undefined],
      ["PUT", "https://hs/_matrix/client/v3/profile/%40alice%3Ahs/displayname", { displayname: "Alice A." }],
    ]);
  });

  it("has no display name when none is set", async () => {
    const { api } = scriptedApi(json(404, { errcode: "M_NOT_FOUND", error: "no name" }), json(200, {}));
    expect(await getDisplayName(api, "@alice:hs")).toBeUndefined();
    expect(await getDisplayName(api, "@alice:hs")).toBeUndefined();
  });
});

describe("avatar", () => {
  it("reads and writes the avatar URL", async () => {
    const { api, calls } = scriptedApi(json(200, { avatar_url: "mxc://hs/abc" }), json(200, {}));
    expect(await getAvatarUrl(api, "@alice:hs")).toBe("mxc://hs/abc");
    await setAvatarUrl(api, "@alice:hs", "mxc://hs/def");
    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ["GET", "https://hs/_matrix/client/v3/profile/%40alice%3Ahs/avatar_url", undefined],
      ["PUT", "https://hs/_matrix/client/v3/profile/%40alice%3Ahs/avatar_url", { avatar_url: "mxc://hs/def" }],
    ]);
  });

  it("has no avatar when none is set or it is not an mxc:// URI", async () => {
    const { api } = scriptedApi(
      json(404, { errcode: "M_NOT_FOUND", error: "no avatar" }),
      json(200, {}),
      json(200, { avatar_url: "https://example.org/me.png" }),
      json(500, { errcode: "M_UNKNOWN", error: "boom" }),
    );
    expect(await getAvatarUrl(api, "@alice:hs")).toBeUndefined();
    expect(await getAvatarUrl(api, "@alice:hs")).toBeUndefined();
    expect(await getAvatarUrl(api, "@alice:hs")).toBeUndefined();
    await expect(getAvatarUrl(api, "@alice:hs")).rejects.toMatchObject({ status: 500 });
  });

  it("uploads the picked image, then sets it as the avatar", async () => {
    const { api, calls } = scriptedApi(json(200, { content_uri: "mxc://hs/new" }), json(200, {}));
    const file = new File([new Uint8Array([1, 2, 3])], "me.png", { type: "image/png" });
    expect(await changeAvatar(api, "@alice:hs", file)).toBe("mxc://hs/new");
    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ["POST", "https://hs/_matrix/media/v3/upload?filename=me.png", undefined],
      ["PUT", "https://hs/_matrix/client/v3/profile/%40alice%3Ahs/avatar_url", { avatar_url: "mxc://hs/new" }],
    ]);
  });

  it("refuses a file that is not an image, and does not set a failed upload", async () => {
    const { api, calls } = scriptedApi(json(413, { errcode: "M_TOO_LARGE", error: "File too large" }));
    await expect(changeAvatar(api, "@alice:hs", new File(["x"], "a.txt", { type: "text/plain" }))).rejects.toThrow(
      "Pick an image file",
    );
    expect(calls).toHaveLength(0);
    const error = await changeAvatar(api, "@alice:hs", new File(["x"], "big.png", { type: "image/png" })).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 413, errcode: "M_TOO_LARGE" });
    expect(calls.map((c) => c.method)).toEqual(["POST"]);
  });
});

describe("devices", () => {
  it("lists devices, most recently seen first, skipping malformed entries", async () => {
    const { api } = scriptedApi(
      json(200, {
        devices: [
          { device_id: "OLD", display_name: "Phone", last_seen_ts: 1, last_seen_ip: "10.0.0.2" },
          { device_id: "NEW", last_seen_ts: 5 },
          { display_name: "no id" },
          { device_id: "NEVER", display_name: null },
        ],
      }),
    );
    expect(await listDevices(api)).toEqual([
      { deviceId: "NEW", lastSeenTs: 5 },
      { deviceId: "OLD", displayName: "Phone", lastSeenTs: 1, lastSeenIp: "10.0.0.2" },
      { deviceId: "NEVER" },
    ]);
  });

  it("renames a device", async () => {
    const { api, calls } = scriptedApi(json(200, {}));
    await renameDevice(api, "DEV/1", "Laptop");
    expect(calls[0]).toMatchObject({ method: "PUT", url: "https://hs/_matrix/client/v3/devices/DEV%2F1", body: { display_name: "Laptop" } });
  });

  it("deletes a device at once when the server asks nothing", async () => {
    const { api, calls } = scriptedApi(json(200, {}));
    await deleteDevice(api, "OTHER");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "DELETE", url: "https://hs/_matrix/client/v3/devices/OTHER", body: {} });
  });

  it("asks for the password on a UIA 401, then retries with it in the server's session", async () => {
    const { api, calls } = scriptedApi(json(401, UIA), json(200, {}));
    const first = await deleteDevice(api, "OTHER").catch((e: unknown) => e);
    expect(first).toBeInstanceOf(PasswordRequiredError);
    expect((first as PasswordRequiredError).session).toBe("S1");
    await deleteDevice(api, "OTHER", { user: "@alice:hs", password: "secret", session: "S1" });
    expect(calls.map((c) => c.method)).toEqual(["DELETE", "DELETE"]);
    expect(calls[0]!.body).toEqual({});
    expect(calls[1]!.body).toEqual({
      auth: { type: "m.login.password", identifier: { type: "m.id.user", user: "@alice:hs" }, password: "secret", session: "S1" },
    });
  });

  it("asks again, with the server's message, when the password is wrong", async () => {
    const { api } = scriptedApi(
      json(401, { ...UIA, errcode: "M_FORBIDDEN", error: "Invalid password", completed: [] }),
    );
    const error = await deleteDevice(api, "OTHER", { user: "@alice:hs", password: "nope", session: "S1" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PasswordRequiredError);
    expect(error).toMatchObject({ session: "S1", message: "Invalid password" });
  });

  it("says so when the server wants steps other than the password", async () => {
    const { api } = scriptedApi(json(401, { session: "S", flows: [{ stages: ["m.login.sso"] }] }));
    const error = await deleteDevice(api, "OTHER").catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(PasswordRequiredError);
    expect((error as Error).message).toContain("m.login.sso");
  });

  it("passes an ordinary 401 (a dead token) on untouched", async () => {
    const { api } = scriptedApi(json(401, { errcode: "M_UNKNOWN_TOKEN", error: "Unknown token" }));
    const error = await deleteDevice(api, "OTHER").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MatrixApiError);
    expect(error).toMatchObject({ errcode: "M_UNKNOWN_TOKEN" });
  });
});
