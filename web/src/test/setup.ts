// Every test gets an empty IndexedDB (fake-indexeddb, in memory) as the global `indexedDB`.
import "fake-indexeddb/auto";
import { IDBFactory } from "fake-indexeddb";
import { beforeEach } from "vitest";

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});
