// A stand-in for a browser vendor's push service, for the end-to-end test. Headless Chromium
// cannot subscribe at a real push service (there is no network), so the page is given a
// subscription whose endpoint is this HTTPS server on loopback and whose keys are ours. The
// homeserver encrypts each push for those keys (RFC 8291, aes128gcm) and signs it (VAPID,
// RFC 8292); we check both, decrypt, and hand the text to the service worker through the
// DevTools protocol, as the browser would after its push service delivered it.

import { createDecipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");

export class PushService {
  /** Decrypted pushes in order of arrival: { text, json, headers }. */
  received = [];
  /** What went wrong with a push (bad encryption, no VAPID): the test fails on it. */
  problems = [];

  constructor({ cert, key }) {
    this.ecdh = createECDH("prime256v1");
    this.ecdh.generateKeys();
    this.authSecret = randomBytes(16);
    this.server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        if (req.method !== "POST" || !req.url.startsWith("/push/")) {
          res.writeHead(404).end();
          return;
        }
        try {
          this.accept(req.headers, Buffer.concat(chunks));
          res.writeHead(201).end();
        } catch (error) {
          this.problems.push(String(error));
          res.writeHead(400).end();
        }
      });
    });
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  close() {
    this.server.close();
  }

  /** What the page's fake PushSubscription carries. */
  get subscription() {
    return {
      endpoint: `https://127.0.0.1:${this.server.address().port}/push/e2e`,
      p256dh: b64url(this.ecdh.getPublicKey()),
      auth: b64url(this.authSecret),
    };
  }

  accept(headers, body) {
    if (headers["content-encoding"] !== "aes128gcm") throw new Error(`content-encoding ${headers["content-encoding"]}`);
    if (!/^vapid t=[^,]+, ?k=/.test(headers["authorization"] ?? "")) {
      throw new Error(`no VAPID authorization: ${headers["authorization"]}`);
    }
    if (!headers["ttl"]) throw new Error("no TTL header");
    const text = this.decrypt(body);
    this.received.push({ text, json: JSON.parse(text), headers });
  }

  /** RFC 8188 framing, RFC 8291 keys; a push fits in one record. */
  decrypt(body) {
    const salt = body.subarray(0, 16);
    const recordSize = body.readUInt32BE(16);
    const idLength = body[20];
    const serverPublic = body.subarray(21, 21 + idLength);
    const ciphertext = body.subarray(21 + idLength);
    if (ciphertext.length > recordSize) throw new Error("more than one record");
    const shared = this.ecdh.computeSecret(serverPublic);
    const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), this.ecdh.getPublicKey(), serverPublic]);
    const ikm = Buffer.from(hkdfSync("sha256", shared, this.authSecret, keyInfo, 32));
    const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end -= 1;
    if (padded[end] !== 2) throw new Error("the last record's padding delimiter is missing");
    return padded.subarray(0, end).toString("utf8");
  }
}

/**
 * Makes PushManager in a context's pages hand out a subscription at the PushService (its
 * `subscription`; the server key is kept in localStorage, so getSubscription finds it after a
 * reload). Passed to context.addInitScript: it runs in the page.
 */
export function fakePushManager({ endpoint, p256dh, auth }) {
  if (!("PushManager" in window)) return;
  const STORED = "e2e-push-application-server-key";
  const bytes = (base64) => Uint8Array.from(atob(base64.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const subscription = (serverKey) => ({
    endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: serverKey.buffer },
    getKey: (name) => (name === "p256dh" ? bytes(p256dh).buffer : name === "auth" ? bytes(auth).buffer : null),
    toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
    unsubscribe: async () => {
      localStorage.removeItem(STORED);
      return true;
    },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = options.applicationServerKey;
    const view = key instanceof ArrayBuffer ? new Uint8Array(key) : new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
    localStorage.setItem(STORED, btoa(String.fromCharCode(...view)));
    return subscription(view.slice());
  };
  PushManager.prototype.getSubscription = async function () {
    const stored = localStorage.getItem(STORED);
    return stored ? subscription(bytes(stored)) : null;
  };
}

/**
 * Delivers push messages to a page's service worker (DevTools protocol), as the browser would
 * after its push service handed them over; one session for all of a test's deliveries.
 */
export class WorkerPushes {
  static async open(page, origin) {
    const cdp = await page.context().newCDPSession(page);
    const registrations = new Map();
    cdp.on("ServiceWorker.workerRegistrationUpdated", (event) => {
      for (const r of event.registrations) registrations.set(r.registrationId, r);
    });
    await cdp.send("ServiceWorker.enable");
    const deadline = Date.now() + 10_000;
    let registration;
    while (!(registration = [...registrations.values()].find((r) => !r.isDeleted && r.scopeURL.startsWith(origin)))) {
      if (Date.now() > deadline) {
        await cdp.detach().catch(() => undefined);
        throw new Error(`no service worker registration for ${origin}`);
      }
      await new Promise((done) => setTimeout(done, 50));
    }
    return new WorkerPushes(cdp, origin, registration.registrationId);
  }

  constructor(cdp, origin, registrationId) {
    this.cdp = cdp;
    this.origin = origin;
    this.registrationId = registrationId;
  }

  async deliver(text) {
    await this.cdp.send("ServiceWorker.deliverPushMessage", {
      origin: this.origin,
      registrationId: this.registrationId,
      data: text,
    });
  }

  async close() {
    await this.cdp.detach().catch(() => undefined);
  }
}
