/* The service worker: keeps the app shell so that the app opens with no network.
 *
 * Built into dist/sw.js by vite.config.ts, which fills in the version and the file list.
 * Cache-first for the shell (every shell file has a content hash in its name, or is small and
 * re-fetched when the worker updates); navigations get the cached index.html, so a reload
 * offline opens the app. API calls (/_matrix/, /_synapse/, /.well-known/, /health) are never
 * touched: the app's own store (IndexedDB) is what works offline, not an HTTP cache.
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
