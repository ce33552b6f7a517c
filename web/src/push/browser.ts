// Web Push in the browser: permission, the service worker's subscription, and the pusher on the
// server. The pure parts (capability, pusher body) are in webpush.ts; the push handling of the
// service worker in payload.ts.

import type { MatrixApi } from "../api/client";
import { base64UrlDecode, base64UrlEncode, removePusher, webPushCapability, webPushPusher } from "./webpush";

export type PushState =
  /** The server offers no Web Push, or this browser (or a dev build) has no service worker. */
  | { kind: "unavailable"; reason: string }
  | { kind: "denied" }
  | { kind: "off"; vapid: string }
  | { kind: "on"; vapid: string };

type PushApi = Pick<MatrixApi, "capabilities" | "setPusher">;

function browserSupport(): string | undefined {
  if (typeof window === "undefined" || !("serviceWorker" in navigator)) return "this browser has no service workers";
  if (!("PushManager" in window) || !("Notification" in window)) return "this browser has no Web Push";
  return undefined;
}

async function registration(): Promise<ServiceWorkerRegistration | undefined> {
  return navigator.serviceWorker.getRegistration();
}

/** Asks the server (GET /capabilities) and the browser what can be done. */
export async function pushState(api: PushApi): Promise<PushState> {
  const capability = webPushCapability(await api.capabilities());
  if (!capability) return { kind: "unavailable", reason: "this server does not send Web Push" };
  const unsupported = browserSupport();
  if (unsupported) return { kind: "unavailable", reason: unsupported };
  const worker = await registration();
  if (!worker) return { kind: "unavailable", reason: "the app's service worker is not installed" };
  if (Notification.permission === "denied") return { kind: "denied" };
  const subscription = await worker.pushManager.getSubscription();
  const on = subscription !== null && Notification.permission === "granted" && sameKey(subscription, capability.vapid);
  return { kind: on ? "on" : "off", vapid: capability.vapid };
}

function sameKey(subscription: PushSubscription, vapid: string): boolean {
  const key = subscription.options.applicationServerKey;
  return key !== null && base64UrlEncode(key) === base64UrlEncode(base64UrlDecode(vapid));
}

/** Permission, then the subscription (replacing one made for another key), then the pusher. */
export async function enablePush(api: PushApi, vapid: string): Promise<PushState> {
  const permission = await Notification.requestPermission();
  if (permission === "denied") return { kind: "denied" };
  if (permission !== "granted") return { kind: "off", vapid };
  const worker = await navigator.serviceWorker.ready;
  let subscription = await worker.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, vapid)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await worker.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: base64UrlDecode(vapid),
  });
  // The server answers and sends a validation push; the worker acknowledges it (sw.js).
  await api.setPusher(
    webPushPusher(subscription, {
      appDisplayName: document.title || "Chat",
      deviceDisplayName: navigator.userAgent.includes("Mobile") ? "Web (mobile)" : "Web",
      lang: navigator.language || "en",
    }),
  );
  return { kind: "on", vapid };
}

/** Removes the pusher on the server, then the browser's subscription. */
export async function disablePush(api: PushApi, vapid: string): Promise<PushState> {
  const worker = await registration();
  const subscription = await worker?.pushManager.getSubscription();
  const key = subscription?.getKey("p256dh");
  if (key) await api.setPusher(removePusher(base64UrlEncode(key)));
  await subscription?.unsubscribe();
  return { kind: "off", vapid };
}
