import { describe, expect, it } from "vitest";
import { pushAction, roomRoute } from "./payload";
import { base64UrlDecode, base64UrlEncode, removePusher, webPushCapability, webPushPusher } from "./webpush";

describe("pushAction (the service worker's push handler)", () => {
  it("acknowledges the validation push of a new pusher", () => {
    expect(pushAction(JSON.stringify({ app_id: "im.homeserver.web", ack_token: "tok-1" }))).toEqual({
      kind: "ack",
      appId: "im.homeserver.web",
      ackToken: "tok-1",
    });
  });

  it("shows a message titled with the sender and the room, tagged with the room", () => {
    const payload = {
      event_id: "$e",
      room_id: "!r:example.org",
      type: "m.room.message",
      sender: "@bob:example.org",
      sender_display_name: "Bob",
      room_name: "General",
      content: { msgtype: "m.text", body: "Hello" },
      counts: { unread: 2 },
      prio: "high",
    };
    expect(pushAction(JSON.stringify(payload))).toEqual({
      kind: "notify",
      title: "Bob in General",
      options: { body: "Hello", tag: "!r:example.org", data: "!r:example.org", renotify: true },
    });
  });

  it("titles a direct chat (no room name) with the sender's name or localpart", () => {
    const action = pushAction(JSON.stringify({ event_id: "$e", room_id: "!dm:x", sender: "@carol:x", content: {} }));
    expect(action).toMatchObject({ kind: "notify", title: "carol", options: { body: "New message" } });
  });

  it("closes a room's notification when it was read elsewhere, ignores junk", () => {
    expect(pushAction(JSON.stringify({ room_id: "!r:x", counts: { unread: 0 } }))).toEqual({ kind: "clear", tag: "!r:x" });
    expect(pushAction(undefined)).toEqual({ kind: "ignore" });
    expect(pushAction("not json")).toEqual({ kind: "ignore" });
    expect(pushAction("[1]")).toEqual({ kind: "ignore" });
    expect(pushAction(JSON.stringify({ ack_token: "t" }))).toEqual({ kind: "ignore" });
  });

  it("routes a click to the room", () => {
    expect(roomRoute("!a:b.org")).toBe("/#/room/!a%3Ab.org");
  });
});

describe("webPushCapability", () => {
  it("needs m.webpush enabled with a vapid key", () => {
    expect(webPushCapability({ "m.webpush": { enabled: true, vapid: "BKey" } })).toEqual({ vapid: "BKey" });
    expect(webPushCapability({ "m.webpush": { enabled: false, vapid: "BKey" } })).toBeUndefined();
    expect(webPushCapability({ "m.webpush": { enabled: true } })).toBeUndefined();
    expect(webPushCapability({ "m.change_password": { enabled: true } })).toBeUndefined();
    expect(webPushCapability(undefined)).toBeUndefined();
  });
});

describe("webPushPusher", () => {
  const p256dh = new Uint8Array([4, 251, 255, 62, 63, 1]);
  const auth = new Uint8Array([250, 251, 252, 253]);
  const subscription = {
    endpoint: "https://push.example.net/send/abc",
    getKey: (name: "p256dh" | "auth") => (name === "p256dh" ? p256dh.buffer : auth.buffer),
  };

  it("puts the keys (base64url, unpadded) and the endpoint where MSC4174 wants them", () => {
    const body = webPushPusher(subscription, { appDisplayName: "Chat", deviceDisplayName: "Web", lang: "en-GB" });
    expect(body).toEqual({
      kind: "webpush",
      app_id: "im.homeserver.web",
      pushkey: "BPv_Pj8B",
      app_display_name: "Chat",
      device_display_name: "Web",
      lang: "en-GB",
      data: { url: "https://push.example.net/send/abc", auth: "-vv8_Q" },
    });
    expect(removePusher("BPv_Pj8B")).toEqual({ kind: null, app_id: "im.homeserver.web", pushkey: "BPv_Pj8B" });
  });

  it("refuses a subscription without keys", () => {
    expect(() => webPushPusher({ endpoint: "x", getKey: () => null }, { appDisplayName: "", deviceDisplayName: "", lang: "" })).toThrow();
  });

  it("decodes base64url keys, padded or not", () => {
    expect([...base64UrlDecode("BPv_Pj8B")]).toEqual([...p256dh]);
    expect([...base64UrlDecode("-vv8_Q==")]).toEqual([...auth]);
    expect(base64UrlEncode(base64UrlDecode("-vv8_Q"))).toBe("-vv8_Q");
  });
});
