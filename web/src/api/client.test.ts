import { describe, expect, it } from "vitest";
import { json } from "../test/fakeServer";
import { scripted } from "../test/fixtures";
import {
  MatrixApi,
  MatrixApiError,
  NetworkError,
  RegistrationStagesError,
  isTransient,
  normalizeBaseUrl,
} from "./client";

const LOGIN = { user_id: "@new:hs", access_token: "tok", device_id: "DEV" };

describe("MatrixApi", () => {
  it("registers through the m.login.dummy flow, reusing the server's session", async () => {
    const { fetch, calls } = scripted(
      json(401, { session: "S1", flows: [{ stages: ["m.login.recaptcha"] }, { stages: ["m.login.dummy"] }], params: {} }),
      json(200, LOGIN),
    );
    const api = new MatrixApi({ baseUrl: "https://hs/", fetch });
    expect(await api.register("new", "pw")).toEqual(LOGIN);
    expect(calls.map((c) => [c.method, c.url])).toEqual([
      ["POST", "https://hs/_matrix/client/v3/register"],
      ["POST", "https://hs/_matrix/client/v3/register"],
    ]);
    expect(calls[0]!.body).not.toHaveProperty("auth");
    expect(calls[1]!.body).toMatchObject({ username: "new", password: "pw", auth: { type: "m.login.dummy", session: "S1" } });
    expect(calls[1]!.auth).toBeUndefined();
  });

  it("says which stages a server wants when it needs more than the dummy one", async () => {
    const { fetch } = scripted(
      json(401, { session: "S", flows: [{ stages: ["m.login.recaptcha", "m.login.terms"] }] }),
    );
    const api = new MatrixApi({ baseUrl: "https://hs", fetch });
    const error = await api.register("new", "pw").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistrationStagesError);
    expect((error as Error).message).toContain("m.login.recaptcha → m.login.terms");
  });

  it("passes the server's error through when registration is closed", async () => {
    const { fetch } = scripted(json(403, { errcode: "M_FORBIDDEN", error: "Registration has been disabled" }));
    const api = new MatrixApi({ baseUrl: "https://hs", fetch });
    const error = await api.register("new", "pw").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MatrixApiError);
    expect(error).toMatchObject({ status: 403, errcode: "M_FORBIDDEN", message: "Registration has been disabled" });
  });

  it("logs in with a user identifier and sends the token afterwards", async () => {
    const { fetch, calls } = scripted(json(200, LOGIN), json(200, {}));
    const api = new MatrixApi({ baseUrl: "https://hs", fetch });
    const answer = await api.login("alice", "secret");
    expect(calls[0]!.body).toMatchObject({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: "secret",
    });
    api.accessToken = answer.access_token;
    await api.logout();
    expect(calls[1]).toMatchObject({ method: "POST", url: "https://hs/_matrix/client/v3/logout", auth: "Bearer tok" });
  });

  it("puts the txnId in the path of a send, escaped", async () => {
    const { fetch, calls } = scripted(json(200, { event_id: "$e" }));
    const api = new MatrixApi({ baseUrl: "https://hs", accessToken: "tok", fetch });
    expect(await api.sendEvent("!room:hs", "m.room.message", "t/1", { body: "x" })).toEqual({ event_id: "$e" });
    expect(calls[0]).toMatchObject({
      method: "PUT",
      url: "https://hs/_matrix/client/v3/rooms/!room%3Ahs/send/m.room.message/t%2F1",
      body: { body: "x" },
    });
  });

  it("tells transient failures from refusals", async () => {
    const { fetch } = scripted(new TypeError("Failed to fetch"), json(500, {}), json(429, { errcode: "M_LIMIT_EXCEEDED" }), json(403, { errcode: "M_FORBIDDEN" }));
    const api = new MatrixApi({ baseUrl: "https://hs", accessToken: "tok", fetch });
    const errors: unknown[] = [];
    for (let i = 0; i < 4; i++) errors.push(await api.sendEvent("!r:hs", "m.room.message", `t${i}`, {}).catch((e: unknown) => e));
    expect(errors[0]).toBeInstanceOf(NetworkError);
    expect(errors.map(isTransient)).toEqual([true, true, true, false]);
  });

  it("normalizes the homeserver address", () => {
    expect(normalizeBaseUrl(" matrix.example.org/ ")).toBe("https://matrix.example.org");
    expect(normalizeBaseUrl("http://localhost:8008")).toBe("http://localhost:8008");
  });
});
