import { afterEach, describe, expect, it } from "vitest";
import type { FetchLike } from "./api/client";
import { ChatSession } from "./session";
import { Store } from "./store/store";
import { freshDbName, json } from "./test/fakeServer";
import { describeRoomActionError } from "./ui/RoomActions";

const stores: Store[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

/** A session whose requests are answered by `answer` (by method and path), all recorded. */
async function sessionWith(answer: (method: string, path: string) => Response) {
  const store = await Store.open(freshDbName());
  stores.push(store);
  const calls: { method: string; path: string; body: unknown }[] = [];
  const fetch: FetchLike = async (input, init) => {
    const path = decodeURIComponent(new URL(input).pathname);
    const method = init?.method ?? "GET";
    calls.push({ method, path, body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined });
    return answer(method, path);
  };
  const session = new ChatSession(store, { baseUrl: "https://hs.test", userId: "@me:hs.test", accessToken: "t", deviceId: "D" }, fetch);
  return { session, calls };
}

describe("room actions", () => {
  it("renames with m.room.name state", async () => {
    const { session, calls } = await sessionWith(() => json(200, { event_id: "$e" }));
    await session.renameRoom("!r:hs.test", "lounge");
    expect(calls).toEqual([{ method: "PUT", path: "/_matrix/client/v3/rooms/!r:hs.test/state/m.room.name/", body: { name: "lounge" } }]);
  });

  it("leaves a server's channels, then its space, and says which could not be left", async () => {
    const { session, calls } = await sessionWith((_method, path) =>
      path.includes("!b:") ? json(500, { errcode: "M_UNKNOWN", error: "boom" }) : json(200, {}),
    );
    await expect(session.leaveServer("!space:hs.test", ["!a:hs.test", "!b:hs.test"])).rejects.toThrow(/1 of its channels could not be left: boom/);
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /_matrix/client/v3/rooms/!a:hs.test/leave",
      "POST /_matrix/client/v3/rooms/!b:hs.test/leave",
      "POST /_matrix/client/v3/rooms/!space:hs.test/leave",
    ]);
  });

  it("creates a group: a named private room outside any server, its people invited", async () => {
    const { session, calls } = await sessionWith(() => json(200, { room_id: "!g:hs.test" }));
    expect(await session.createGroup("Weekend", ["@bob:hs.test", "@carol:other.org"])).toBe("!g:hs.test");
    expect(calls).toEqual([
      {
        method: "POST",
        path: "/_matrix/client/v3/createRoom",
        body: { name: "Weekend", preset: "private_chat", visibility: "private", invite: ["@bob:hs.test", "@carol:other.org"] },
      },
    ]);
  });

  it("explains a refusal for lack of power", async () => {
    const { session } = await sessionWith(() => json(403, { errcode: "M_FORBIDDEN", error: "You don't have permission" }));
    const error = await session.renameRoom("!r:hs.test", "x").catch((e: unknown) => e);
    expect(describeRoomActionError(error, "rename", "channel")).toBe(
      "You are not allowed to rename this channel: You don't have permission (M_FORBIDDEN)",
    );
  });
});
