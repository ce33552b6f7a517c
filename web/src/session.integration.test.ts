// Against a real homeserver, only when HOMESERVER_URL names one (with open registration):
//   HOMESERVER_URL=http://localhost:8008 npm test
// Signs up two users, creates a server (space + #general), joins it by address from the other
// account, and sends through the outbox; everything is read back from the store.

import { afterEach, describe, expect, it } from "vitest";
import { ChatSession, signUp } from "./session";
import { Store } from "./store/store";
import { freshDbName } from "./test/fakeServer";
import { channelsOf, directRoomIds, sidebar } from "./ui/model";

// Vitest runs in Node; the app's type settings do not include Node's globals.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
const BASE = env?.["HOMESERVER_URL"];
const stores: Store[] = [];

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

async function account(name: string): Promise<ChatSession> {
  const store = await Store.open(freshDbName());
  stores.push(store);
  const session = await signUp(store, BASE!, name, "correct horse battery");
  return new ChatSession(store, session);
}

describe.skipIf(!BASE)("against a real homeserver", () => {
  it("creates a server with #general, is joined by address, and delivers a message once", async () => {
    const suffix = Date.now().toString(36);
    const alice = await account(`alice${suffix}`);
    const bob = await account(`bob${suffix}`);

    const spaceId = await alice.createServer("Test server", { isPublic: true, alias: `test${suffix}` });
    await alice.sync.syncOnce();
    const rooms = await alice.store.listRooms();
    const space = rooms.find((r) => r.roomId === spaceId)!;
    expect(space.roomType).toBe("m.space");
    const [general] = channelsOf(space, rooms);
    expect(general?.name).toBe("general");
    expect(general?.parents[spaceId]?.via).toEqual([alice.serverName]);
    expect(sidebar(rooms, new Map()).spaces.map((s) => s.roomId)).toEqual([spaceId]);

    // Bob joins by address: the space and, through the hierarchy, its channels.
    const joined = await bob.joinByAddress(`#test${suffix}:${bob.serverName}`);
    expect(joined).toBe(spaceId);
    await bob.sync.syncOnce();
    const bobRooms = await bob.store.listRooms();
    expect(channelsOf(bobRooms.find((r) => r.roomId === spaceId)!, bobRooms).map((r) => r.roomId)).toEqual([
      general!.roomId,
    ]);

    // Through the outbox; then /sync brings it back with its transaction_id.
    await bob.outbox.sendText(general!.roomId, "hello from bob");
    expect(await bob.outbox.flush()).toBe("done");
    expect(await bob.store.listOutbox()).toEqual([]);
    await bob.sync.syncOnce();
    await alice.sync.syncOnce();
    for (const who of [alice, bob]) {
      const bodies = (await who.store.getTimeline(general!.roomId))
        .filter((t) => t.event.type === "m.room.message")
        .map((t) => [t.event.content["body"], t.local ?? false]);
      expect(bodies).toEqual([["hello from bob", false]]);
    }

    // Older history through /messages from the stored token.
    const stored = await alice.store.getTimeline(general!.roomId);
    const token = stored.find((t) => t.tokenBefore)?.tokenBefore;
    if (token) await alice.loadOlder(general!.roomId, token);

    // A direct message: Bob is invited as a direct chat, accepts, and both list it under DMs.
    const dm = await alice.startDirectChat(bob.session.userId);
    await bob.sync.syncOnce();
    const invite = await bob.store.getRoom(dm);
    expect(invite).toMatchObject({ membership: "invite", inviter: alice.session.userId, isDirectInvite: true });
    await bob.acceptInvite(invite!);
    await bob.sync.syncOnce();
    await alice.sync.syncOnce();
    for (const who of [alice, bob]) {
      const direct = await who.store.getAccountData("m.direct");
      const side = sidebar(await who.store.listRooms(), directRoomIds(direct?.content));
      expect(side.directs.map((r) => r.roomId)).toEqual([dm]);
    }

    await alice.logOut();
    expect(await alice.store.getSession()).toBeUndefined();
  });
});
