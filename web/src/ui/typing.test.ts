import { describe, expect, it } from "vitest";
import { TypingNotifier } from "./typing";

describe("TypingNotifier", () => {
  it("says typing once, renews before the timeout, and stops on empty text or stop()", () => {
    const sent: boolean[] = [];
    let now = 0;
    const notifier = new TypingNotifier(async (typing) => void sent.push(typing), () => now);
    notifier.input("h");
    notifier.input("he");
    now = 10_000;
    notifier.input("hel");
    expect(sent).toEqual([true]);
    now = 26_000;
    notifier.input("hell");
    expect(sent).toEqual([true, true]);
    notifier.input("  ");
    expect(sent).toEqual([true, true, false]);
    notifier.stop();
    expect(sent).toEqual([true, true, false]);
    notifier.input("again");
    notifier.stop();
    expect(sent).toEqual([true, true, false, true, false]);
  });
});
