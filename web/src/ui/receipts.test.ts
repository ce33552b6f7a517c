import { describe, expect, it } from "vitest";
import type { TimelineRecord } from "../store/schema";
import { event } from "../test/fakeServer";
import { receiptToSend } from "./receipts";

const ME = "@me:x";
const record = (id: string, order: number, extra: Partial<TimelineRecord> = {}, sender = "@bob:x"): TimelineRecord => ({
  roomId: "!r:x",
  order,
  eventId: id,
  event: event(id, { sender }),
  ...extra,
});
const base = { room: {}, me: ME, lastSent: undefined, visible: true, atBottom: true };

describe("receiptToSend", () => {
  const stored = [record("$1", 1), record("$2", 2)];

  it("marks the newest event read when it is on screen in a visible page", () => {
    expect(receiptToSend({ ...base, stored })).toBe("$2");
  });

  it("waits while hidden, scrolled up, or with nothing stored", () => {
    expect(receiptToSend({ ...base, stored, visible: false })).toBeUndefined();
    expect(receiptToSend({ ...base, stored, atBottom: false })).toBeUndefined();
    expect(receiptToSend({ ...base, stored: [] })).toBeUndefined();
  });

  it("sends at most once per new event", () => {
    expect(receiptToSend({ ...base, stored, lastSent: "$2" })).toBeUndefined();
    expect(receiptToSend({ ...base, stored, room: { readUpTo: "$2" } })).toBeUndefined();
    expect(receiptToSend({ ...base, stored: [...stored, record("$3", 3)], lastSent: "$2" })).toBe("$3");
  });

  it("does not send for a local echo", () => {
    expect(receiptToSend({ ...base, stored: [...stored, record("$mine", 3, { local: true }, ME)] })).toBeUndefined();
  });

  it("skips our own newest message unless counts are left", () => {
    const own = [...stored, record("$3", 3, {}, ME)];
    expect(receiptToSend({ ...base, stored: own })).toBeUndefined();
    expect(receiptToSend({ ...base, stored: own, room: { notificationCount: 1 } })).toBe("$3");
  });
});
