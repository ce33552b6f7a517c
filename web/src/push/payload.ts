// What the service worker does with a push: a pure function from the decrypted payload to one
// action, so that it is tested here without a browser. sw/sw.js cannot import modules (it is a
// classic worker, copied by vite.config.ts), so the build inlines this file into dist/sw.js as
// the global `swPush`: keep it free of imports other than types.

/** Where a notification click leads: the app's route of a room. */
export function roomRoute(roomId: string): string {
  return `/#/room/${encodeURIComponent(roomId)}`;
}

export type PushAction =
  /** The validation push of a new Web Push pusher (MSC4174): POST /pushers/ack with these. */
  | { kind: "ack"; appId: string; ackToken: string }
  /** A message to show. `tag` (the room) makes a newer message of a room replace the older. */
  | { kind: "notify"; title: string; options: { body: string; tag: string; data: string; renotify: boolean } }
  /** The room was read elsewhere (no event, unread 0): close what is shown for it. */
  | { kind: "clear"; tag: string }
  | { kind: "ignore" };

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined;

/** `raw` is the push message's text (JSON), or undefined when the push carried no data. */
export function pushAction(raw: string | undefined): PushAction {
  let payload: unknown;
  try {
    payload = raw ? JSON.parse(raw) : undefined;
  } catch {
    return { kind: "ignore" };
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return { kind: "ignore" };
  const p = payload as Record<string, unknown>;
  const ackToken = text(p["ack_token"]);
  if (ackToken) {
    const appId = text(p["app_id"]);
    return appId ? { kind: "ack", appId, ackToken } : { kind: "ignore" };
  }
  const roomId = text(p["room_id"]);
  if (!roomId) return { kind: "ignore" };
  const counts = typeof p["counts"] === "object" && p["counts"] !== null ? (p["counts"] as Record<string, unknown>) : {};
  if (!text(p["event_id"])) {
    return counts["unread"] === 0 ? { kind: "clear", tag: roomId } : { kind: "ignore" };
  }
  const sender = text(p["sender_display_name"]) ?? localpart(text(p["sender"]) ?? "Someone");
  const roomName = text(p["room_name"]);
  const content = typeof p["content"] === "object" && p["content"] !== null ? (p["content"] as Record<string, unknown>) : {};
  let body = text(content["body"]) ?? "New message";
  if (content["msgtype"] === "m.emote") body = `* ${sender} ${body}`;
  // A room with a name: "Bob in General"; a direct chat (no name) is titled with the sender.
  const title = roomName && roomName !== sender ? `${sender} in ${roomName}` : sender;
  return { kind: "notify", title, options: { body, tag: roomId, data: roomId, renotify: true } };
}

function localpart(userId: string): string {
  return userId.startsWith("@") ? (userId.slice(1).split(":")[0] ?? userId) : userId;
}
