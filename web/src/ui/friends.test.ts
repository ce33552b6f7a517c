import { describe, expect, it } from "vitest";
import type { RoomRecord } from "../store/schema";
import { emptyRoom } from "../sync/reducer";
import { channelsToLeave, directRoomIds, friendsOf, sidebar } from "./model";

const ME = "@me:x";
const room = (id: string, extra: Partial<RoomRecord> = {}): RoomRecord => ({ ...emptyRoom(id, "join"), ...extra });
const invite = (id: string, extra: Partial<RoomRecord> = {}): RoomRecord => ({ ...emptyRoom(id, "invite"), ...extra });

describe("the friends list", () => {
  it("lists each DM partner once, by their most active joined DM, and DM invites as requests", () => {
    const rooms = [
      room("!bob-old:x", { lastActivity: 100 }),
      room("!bob-new:x", { lastActivity: 300 }),
      room("!carol:x", { lastActivity: 200 }),
      room("!dave:x"), // no activity yet: after the others
      room("!group:x", { lastActivity: 999 }), // not a DM
      room("!self:x", { lastActivity: 500 }), // m.direct naming ourselves: not a friend
      invite("!eve:x", { inviter: "@eve:x", isDirectInvite: true }),
      invite("!frank:x"), // no is_direct, but our m.direct lists it (a re-invite)
      invite("!server:x", { inviter: "@gina:x", roomType: "m.space" }), // a plain invite
      invite("!room:x", { inviter: "@gina:x", isDirectInvite: false }),
    ];
    const directs = directRoomIds({
      "@bob:x": ["!bob-old:x", "!bob-new:x"],
      "@carol:x": ["!carol:x", "!gone:x"], // a DM no longer in the store
      "@dave:x": ["!dave:x"],
      "@me:x": ["!self:x"],
      "@frank:x": ["!frank:x"],
    });
    const { friends, requests } = friendsOf(rooms, directs, ME);
    expect(friends).toEqual([
      { userId: "@bob:x", roomId: "!bob-new:x", lastActivity: 300 },
      { userId: "@carol:x", roomId: "!carol:x", lastActivity: 200 },
      { userId: "@dave:x", roomId: "!dave:x" },
    ]);
    expect(requests.map((r) => [r.room.roomId, r.userId])).toEqual([
      ["!eve:x", "@eve:x"],
      ["!frank:x", "@frank:x"],
    ]);
    // DM invites are friend requests, not in the sidebar's Invites; the others stay there.
    expect(sidebar(rooms, directs).invites.map((r) => r.roomId)).toEqual(["!server:x", "!room:x"]);
  });

  it("is empty without m.direct or DM invites", () => {
    expect(friendsOf([room("!a:x"), invite("!b:x", { inviter: "@b:x" })], new Map(), ME)).toEqual({ friends: [], requests: [] });
  });
});

describe("leaving a server", () => {
  it("leaves its joined channels, not those of another server we stay in, nor unjoined ones", () => {
    const guild = room("!guild:x", {
      roomType: "m.space",
      children: { "!general:x": { via: ["x"] }, "!shared:x": { via: ["x"] }, "!invited:x": { via: ["x"] }, "!sub:x": { via: ["x"] }, "!unknown:x": { via: ["x"] } },
    });
    const other = room("!other:x", { roomType: "m.space", children: { "!shared:x": { via: ["x"] } } });
    const rooms = [
      guild,
      other,
      room("!general:x", { name: "general" }),
      room("!shared:x", { name: "shared" }),
      room("!orphan:x", { name: "announcements", parents: { "!guild:x": { via: ["x"] } } }), // names the space as parent only
      room("!claimed:x", { name: "claimed", parents: { "!guild:x": { via: ["x"] }, "!other:x": { via: ["x"] } } }),
      invite("!invited:x", { name: "invited" }),
      room("!sub:x", { roomType: "m.space", name: "sub" }),
      room("!elsewhere:x", { name: "elsewhere" }),
    ];
    expect(channelsToLeave(guild, rooms).map((r) => r.roomId)).toEqual(["!orphan:x", "!general:x"]);
    // Once the other server is left too, the shared channels go with this one.
    const without = rooms.filter((r) => r.roomId !== "!other:x");
    expect(channelsToLeave(guild, without).map((r) => r.name)).toEqual(["announcements", "claimed", "general", "shared"]);
  });
});
