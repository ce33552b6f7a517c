// Web Push (MSC4174) from the page: what the server offers (the `m.webpush` capability) and the
// pusher we register for a browser subscription. The subscribing itself is in enableWebPush.

import type { JsonObject } from "../api/types";

export const PUSH_APP_ID = "im.homeserver.web";

export interface WebPushCapability {
  vapid: string;
}

/** `m.webpush` of GET /capabilities, when enabled with a key; otherwise undefined. */
export function webPushCapability(capabilities: JsonObject | undefined): WebPushCapability | undefined {
  const entry = capabilities?.["m.webpush"];
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return undefined;
  const { enabled, vapid } = entry as JsonObject;
  if (enabled !== true || typeof vapid !== "string" || vapid.length === 0) return undefined;
  return { vapid };
}

export function base64UrlEncode(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = standard + "=".repeat((4 - (standard.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The parts of a PushSubscription the pusher needs (PushSubscription satisfies it). */
export interface SubscriptionLike {
  endpoint: string;
  getKey(name: "p256dh" | "auth"): ArrayBuffer | null;
}

export interface PusherInfo {
  appDisplayName: string;
  deviceDisplayName: string;
  lang: string;
}

/** The body of POST /pushers/set for a subscription: the key is the pushkey, the endpoint and
 *  the auth secret go in `data` (all base64url, unpadded). */
export function webPushPusher(subscription: SubscriptionLike, info: PusherInfo): JsonObject {
  const p256dh = subscription.getKey("p256dh");
  const auth = subscription.getKey("auth");
  if (!p256dh || !auth) throw new Error("The browser's push subscription has no keys");
  return {
    kind: "webpush",
    app_id: PUSH_APP_ID,
    pushkey: base64UrlEncode(p256dh),
    app_display_name: info.appDisplayName,
    device_display_name: info.deviceDisplayName,
    lang: info.lang,
    data: { url: subscription.endpoint, auth: base64UrlEncode(auth) },
  };
}

/** Removing the pusher: the same app_id and pushkey, kind null. */
export function removePusher(pushkey: string): JsonObject {
  return { kind: null, app_id: PUSH_APP_ID, pushkey };
}
