/* The service worker: keeps the app shell so that the app opens with no network.
 *
 * Built into dist/sw.js by vite.config.ts, which fills in the version and the file list.
 * Cache-first for the shell (every shell file has a content hash in its name, or is small and
 * re-fetched when the worker updates); navigations get the cached index.html, so a reload
 * offline opens the app. API calls (/_matrix/, /_synapse/, /.well-known/, /health) are never
 * touched: the app's own store (IndexedDB) is what works offline, not an HTTP cache.
 *
 * Notifications (Web Push, MSC4174): `swPush` (src/push/payload.ts, put in front of this file by
 * the build) turns a push into an action. The acknowledgement of a new pusher needs the access
 * token: the worker reads the session the app keeps in its IndexedDB database (meta/session),
 * so it works with no page open and always has the current token (no copy to keep in step).
 */

const VERSION = self.__SHELL_VERSION__;
const SHELL_FILES = self.__SHELL_FILES__;
const CACHE = `shell-${VERSION}`;
const INDEX = "/index.html";
const NOT_OURS = ["/_matrix/", "/_synapse/", "/.well-known/", "/health"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `reload`: straight from the server, not from the browser's HTTP cache.
      await cache.addAll(SHELL_FILES.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("shell-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (NOT_OURS.some((prefix) => url.pathname.startsWith(prefix))) return;

  if (request.mode === "navigate") {
    event.respondWith(
      (async () => {
        const cached = await caches.match(INDEX, { cacheName: CACHE });
        if (cached) return cached;
        return fetch(request);
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      const cached = await caches.match(url.pathname, { cacheName: CACHE });
      return cached ?? fetch(request);
    })(),
  );
});

// -- notifications --------------------------------------------------------------------------------

const DB_NAME = "homeserver-web";

/** The app's saved session ({baseUrl, accessToken, ...}), or undefined when signed out. */
function readSession() {
  return new Promise((resolve) => {
    const open = indexedDB.open(DB_NAME);
    // No database yet: do not create one (the app creates it, with its schema).
    open.onupgradeneeded = () => open.transaction.abort();
    open.onerror = () => resolve(undefined);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const get = db.transaction("meta", "readonly").objectStore("meta").get("session");
        get.onsuccess = () => resolve(get.result);
        get.onerror = () => resolve(undefined);
      } catch {
        resolve(undefined);
      } finally {
        db.close();
      }
    };
  });
}

async function acknowledge(appId, ackToken) {
  const session = await readSession();
  if (!session) return;
  await fetch(`${session.baseUrl}/_matrix/client/v3/pushers/ack`, {
    method: "POST",
    headers: { Authorization: `Bearer ${session.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ app_id: appId, ack_token: ackToken }),
  });
}

self.addEventListener("push", (event) => {
  let text;
  try {
    text = event.data ? event.data.text() : undefined;
  } catch {
    text = undefined;
  }
  const action = swPush.pushAction(text);
  event.waitUntil(
    (async () => {
      switch (action.kind) {
        case "ack":
          await acknowledge(action.appId, action.ackToken).catch(() => undefined);
          break;
        case "notify":
          await self.registration.showNotification(action.title, {
            ...action.options,
            icon: "/icons/icon-192.png",
          });
          break;
        case "clear":
          for (const shown of await self.registration.getNotifications({ tag: action.tag })) shown.close();
          break;
      }
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const roomId = typeof event.notification.data === "string" ? event.notification.data : undefined;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      if (open) {
        // The open app switches rooms itself (ChatShell listens), without a reload.
        if (roomId) open.postMessage({ type: "open-room", roomId });
        await open.focus();
        return;
      }
      await self.clients.openWindow(roomId ? swPush.roomRoute(roomId) : "/");
    })(),
  );
});
