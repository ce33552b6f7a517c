// The store: IndexedDB through `idb`. Every change reaches the UI the same way: it is written
// here first, in one transaction, and only then are listeners told (persist, then render).

import {
  openDB,
  deleteDB,
  type IDBPDatabase,
  type IDBPObjectStore,
  type IDBPTransaction,
  type StoreNames,
} from "idb";
import type { Session } from "../api/client";
import type { RoomEvent } from "../api/types";
import { TabBus, type StoreChange } from "../tabs";
import {
  DB_VERSION,
  STORE_NAMES,
  type AccountDataRecord,
  type MatrixDB,
  type MemberRecord,
  type OutboxRecord,
  type RoomRecord,
  type TimelineRecord,
} from "./schema";

export const DEFAULT_DB_NAME = "homeserver-web";
export const DEFAULT_TIMELINE_LIMIT = 200;

export interface TimelineWrite {
  roomId: string;
  /** Oldest first, as /sync delivers them. */
  events: RoomEvent[];
  /** The server skipped events between what we have and these: drop what we have (the gap). */
  limited: boolean;
  prevBatch?: string;
}

/** Everything one /sync response changes, applied in one transaction. */
export interface SyncWrites {
  syncToken: string;
  rooms: RoomRecord[];
  /** Rooms we left (or were kicked/banned from): their records, members and timeline go. */
  deletedRooms: string[];
  members: MemberRecord[];
  timelines: TimelineWrite[];
  accountData: AccountDataRecord[];
  /** transaction_ids of our own events that came back: their outbox entries are confirmed. */
  confirmedTxnIds: string[];
}

export type ChangeKind = StoreChange;
/** `fromOtherTab`: another tab of this browser wrote it (see tabs.ts). */
export type ChangeListener = (kind: ChangeKind, fromOtherTab: boolean) => void;

type Tx = IDBPTransaction<MatrixDB, StoreNames<MatrixDB>[], "readwrite">;
type TimelineStore = IDBPObjectStore<
  MatrixDB,
  ArrayLike<StoreNames<MatrixDB>>,
  "timeline",
  "readwrite"
>;

const roomRange = (roomId: string) => IDBKeyRange.bound([roomId, -Infinity], [roomId, Infinity]);
const memberRange = (roomId: string) => IDBKeyRange.bound([roomId, ""], [roomId, "\uffff\uffff"]);

export class Store {
  private listeners = new Set<ChangeListener>();

  private constructor(
    private readonly db: IDBPDatabase<MatrixDB>,
    readonly name: string,
    readonly timelineLimit: number,
    /** The other tabs of this store: they hear of each change written here, and we of theirs. */
    readonly tabs: TabBus,
  ) {
    tabs.onMessage((message) => {
      if (message.type === "changed") this.notify(message.kind, true);
    });
  }

  static async open(
    name = DEFAULT_DB_NAME,
    options: { timelineLimit?: number } = {},
  ): Promise<Store> {
    const db = await openDB<MatrixDB>(name, DB_VERSION, {
      upgrade(db, oldVersion) {
        if (oldVersion < 1) {
          db.createObjectStore("meta");
          db.createObjectStore("rooms", { keyPath: "roomId" });
          db.createObjectStore("members", { keyPath: ["roomId", "userId"] });
          const timeline = db.createObjectStore("timeline", { keyPath: ["roomId", "order"] });
          timeline.createIndex("byEventId", "eventId");
          const outbox = db.createObjectStore("outbox", { keyPath: "id", autoIncrement: true });
          outbox.createIndex("byTxnId", "txnId", { unique: true });
          outbox.createIndex("byRoom", "roomId");
          db.createObjectStore("accountData", { keyPath: "type" });
        }
      },
      blocking() {
        // Another tab wants a newer schema: let it have the database.
        db.close();
      },
    });
    return new Store(
      db,
      name,
      options.timelineLimit ?? DEFAULT_TIMELINE_LIMIT,
      TabBus.forStore(name),
    );
  }

  static async destroy(name = DEFAULT_DB_NAME): Promise<void> {
    await deleteDB(name);
  }

  close(): void {
    this.tabs.close();
    this.db.close();
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A change written here: our listeners, then the other tabs, are told. */
  private emit(kind: ChangeKind): void {
    this.notify(kind, false);
    this.tabs.post({ type: "changed", kind });
  }

  private notify(kind: ChangeKind, fromOtherTab: boolean): void {
    for (const listener of [...this.listeners]) listener(kind, fromOtherTab);
  }

  // -- session ----------------------------------------------------------------------------------

  async getSession(): Promise<Session | undefined> {
    return (await this.db.get("meta", "session")) as Session | undefined;
  }

  async setSession(session: Session): Promise<void> {
    await this.db.put("meta", session, "session");
    this.emit("session");
  }

  /** Logout: nothing of the account stays on the device. */
  async clear(): Promise<void> {
    const tx = this.db.transaction([...STORE_NAMES], "readwrite");
    await Promise.all([...STORE_NAMES.map((name) => tx.objectStore(name).clear()), tx.done]);
    this.emit("session");
  }

  async getSyncToken(): Promise<string | undefined> {
    return (await this.db.get("meta", "syncToken")) as string | undefined;
  }

  // -- sync -------------------------------------------------------------------------------------

  /**
   * Reads the current records of `roomIds`, lets `reduce` (pure, synchronous) turn them into
   * writes, and applies those in the same transaction: a crash leaves either all of one /sync
   * response or none of it, and the sync token moves only with the data it covers.
   */
  async applySync(
    roomIds: Iterable<string>,
    reduce: (rooms: ReadonlyMap<string, RoomRecord>) => SyncWrites,
  ): Promise<SyncWrites> {
    const tx = this.db.transaction([...STORE_NAMES], "readwrite");
    const rooms = new Map<string, RoomRecord>();
    for (const roomId of new Set(roomIds)) {
      const record = await tx.objectStore("rooms").get(roomId);
      if (record) rooms.set(roomId, record);
    }
    const writes = reduce(rooms);
    for (const roomId of writes.deletedRooms) {
      await tx.objectStore("rooms").delete(roomId);
      await tx.objectStore("members").delete(memberRange(roomId));
      await tx.objectStore("timeline").delete(roomRange(roomId));
    }
    for (const room of writes.rooms) await tx.objectStore("rooms").put(room);
    for (const member of writes.members) await tx.objectStore("members").put(member);
    for (const timeline of writes.timelines) await this.appendTimeline(tx, timeline);
    for (const record of writes.accountData) await tx.objectStore("accountData").put(record);
    for (const txnId of writes.confirmedTxnIds) {
      const key = await tx.objectStore("outbox").index("byTxnId").getKey(txnId);
      if (key !== undefined) await tx.objectStore("outbox").delete(key);
    }
    await tx.objectStore("meta").put(writes.syncToken, "syncToken");
    await tx.done;
    this.emit("sync");
    return writes;
  }

  private async appendTimeline(tx: Tx, write: TimelineWrite): Promise<void> {
    const timeline = tx.objectStore("timeline");
    const range = roomRange(write.roomId);
    if (write.limited) await timeline.delete(range);
    const newest = await timeline.openCursor(range, "prev");
    let order = newest ? newest.value.order : 0;
    let first = true;
    for (const event of write.events) {
      const isFirst = first;
      first = false;
      const existing = await timeline.index("byEventId").get(event.event_id);
      if (existing) {
        if (!existing.local) continue; // already have it
        // Our local echo: the server's copy replaces it, at the position the server gave it.
        await timeline.delete([existing.roomId, existing.order]);
      }
      order += 1;
      const record: TimelineRecord = { roomId: write.roomId, order, eventId: event.event_id, event };
      if (isFirst && write.prevBatch) record.tokenBefore = write.prevBatch;
      await timeline.put(record);
    }
    await this.trim(timeline, write.roomId);
  }

  /** Keeps only the newest `timelineLimit` events of a room. */
  private async trim(timeline: TimelineStore, roomId: string): Promise<void> {
    const range = roomRange(roomId);
    let excess = (await timeline.count(range)) - this.timelineLimit;
    if (excess <= 0) return;
    let cursor = await timeline.openCursor(range, "next");
    while (cursor && excess > 0) {
      await cursor.delete();
      excess -= 1;
      cursor = await cursor.continue();
    }
  }

  // -- reading ----------------------------------------------------------------------------------

  async listRooms(): Promise<RoomRecord[]> {
    return this.db.getAll("rooms");
  }

  async getRoom(roomId: string): Promise<RoomRecord | undefined> {
    return this.db.get("rooms", roomId);
  }

  async getMembers(roomId: string): Promise<MemberRecord[]> {
    return this.db.getAll("members", memberRange(roomId));
  }

  /** The stored recent timeline of a room, oldest first. */
  async getTimeline(roomId: string): Promise<TimelineRecord[]> {
    return this.db.getAll("timeline", roomRange(roomId));
  }

  async getAccountData(type: string): Promise<AccountDataRecord | undefined> {
    return this.db.get("accountData", type);
  }

  /**
   * Keeps older events that /messages returned (newest first, as dir=b gives them), as far as the
   * bound allows. `endToken` is /messages' `end`: it goes on the oldest event kept, but only if
   * the whole page was kept (otherwise it would point before an event we do not have).
   */
  async prependEvents(roomId: string, page: RoomEvent[], endToken?: string): Promise<number> {
    const tx = this.db.transaction(["timeline"], "readwrite");
    const timeline = tx.objectStore("timeline");
    const range = roomRange(roomId);
    const oldest = await timeline.openCursor(range, "next");
    const count = await timeline.count(range);
    let order = oldest ? oldest.value.order : 0;
    let room = this.timelineLimit - count;
    const fresh: RoomEvent[] = [];
    for (const event of page) {
      if (!(await timeline.index("byEventId").getKey(event.event_id))) fresh.push(event);
    }
    let kept = 0;
    let last: TimelineRecord | undefined;
    for (const event of fresh) {
      if (room <= 0) break;
      order -= 1;
      room -= 1;
      kept += 1;
      last = { roomId, order, eventId: event.event_id, event };
      await timeline.put(last);
    }
    if (last && kept === fresh.length && endToken) {
      last.tokenBefore = endToken;
      await timeline.put(last);
    }
    await tx.done;
    if (kept > 0) this.emit("timeline");
    return kept;
  }

  // -- outbox -----------------------------------------------------------------------------------

  /** Writes a new entry; resolves once it is on disk, before anything is sent. */
  async addOutbox(entry: Omit<OutboxRecord, "id">): Promise<OutboxRecord> {
    const id = await this.db.add("outbox", { ...entry });
    this.emit("outbox");
    return { ...entry, id };
  }

  /** Every entry, in the order they were written. */
  async listOutbox(roomId?: string): Promise<OutboxRecord[]> {
    if (roomId === undefined) return this.db.getAll("outbox");
    const entries = await this.db.getAllFromIndex("outbox", "byRoom", roomId);
    return entries.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  }

  async getOutbox(txnId: string): Promise<OutboxRecord | undefined> {
    return this.db.getFromIndex("outbox", "byTxnId", txnId);
  }

  async updateOutbox(txnId: string, patch: Partial<Omit<OutboxRecord, "id" | "txnId">>): Promise<void> {
    const tx = this.db.transaction(["outbox"], "readwrite");
    const entry = await tx.objectStore("outbox").index("byTxnId").get(txnId);
    if (entry) await tx.objectStore("outbox").put({ ...entry, ...patch });
    await tx.done;
    if (entry) this.emit("outbox");
  }

  /** The user gave up on an entry. */
  async discardOutbox(txnId: string): Promise<void> {
    const tx = this.db.transaction(["outbox"], "readwrite");
    const key = await tx.objectStore("outbox").index("byTxnId").getKey(txnId);
    if (key !== undefined) await tx.objectStore("outbox").delete(key);
    await tx.done;
    this.emit("outbox");
  }

  /**
   * The server confirmed an entry with its event_id: in one transaction the entry goes and the
   * message joins the timeline as a local echo (unless /sync delivered it already), so it never
   * disappears from the screen between the answer and the next /sync.
   */
  async confirmOutbox(txnId: string, echo: RoomEvent): Promise<void> {
    const tx = this.db.transaction(["outbox", "timeline"], "readwrite");
    const key = await tx.objectStore("outbox").index("byTxnId").getKey(txnId);
    if (key !== undefined) await tx.objectStore("outbox").delete(key);
    const timeline = tx.objectStore("timeline");
    const known = await timeline.index("byEventId").getKey(echo.event_id);
    if (key !== undefined && known === undefined) {
      const roomId = echo.room_id ?? "";
      const newest = await timeline.openCursor(roomRange(roomId), "prev");
      const order = (newest ? newest.value.order : 0) + 1;
      await timeline.put({ roomId, order, eventId: echo.event_id, event: echo, local: true });
      await this.trim(timeline, roomId);
    }
    await tx.done;
    this.emit("outbox");
  }
}
