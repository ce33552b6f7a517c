// Test helpers shared by several test files: a scripted fetch, and an outbox on a fresh store.

import { afterEach } from "vitest";
import { MatrixApi, type FetchLike } from "../api/client";
import { Outbox } from "../outbox/outbox";
import { Store } from "../store/store";
import { FakeHomeserver, freshDbName } from "./fakeServer";

export const ME = "@me:example.org";
export const ROOM = "!room:example.org";

export interface Call {
  method: string;
  url: string;
  body: unknown;
  auth: string | undefined;
}

/** A fetch that answers with `answers` in order (an Error is thrown) and records each call. */
export function scripted(...answers: (Response | Error)[]): { fetch: FetchLike; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: FetchLike = async (input, init) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({
      method: init?.method ?? "GET",
      url: input,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
      auth: headers["Authorization"],
    });
    const answer = answers.shift();
    if (!answer) throw new Error("unexpected request");
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, calls };
}

const open: Store[] = [];

afterEach(() => {
  for (const store of open.splice(0)) store.close();
});

/** An outbox for ME on a store `name` (fresh by default), talking to `server`; the stores are
 * closed after each test. */
export async function setupOutbox(name = freshDbName(), server = new FakeHomeserver()) {
  const store = await Store.open(name);
  open.push(store);
  const api = new MatrixApi({ baseUrl: "https://hs.example.org", accessToken: "tok", fetch: server.fetch });
  let n = 0;
  const outbox = new Outbox({ store, api, userId: ME, newTxnId: () => `txn-${name}-${++n}`, now: () => 1234 });
  return { store, api, outbox, server };
}
