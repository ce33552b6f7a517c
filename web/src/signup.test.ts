import { afterEach, describe, expect, it, vi } from "vitest";
import { EmailVerificationNeeded, MatrixApiError, RegistrationStagesError } from "./api/client";
import { EmailSignUp, describeSignUpError, signUp } from "./session";
import { Store } from "./store/store";
import { FakeHomeserver, freshDbName } from "./test/fakeServer";

const BASE = "https://hs.example";
const open: Store[] = [];

async function setup(flows: string[][]) {
  const store = await Store.open(freshDbName());
  open.push(store);
  const server = new FakeHomeserver();
  server.registration = { flows };
  return { store, server };
}

/** signUp's EmailVerificationNeeded, made into the EmailSignUp the screen drives. */
async function startEmail(store: Store, server: FakeHomeserver): Promise<EmailSignUp> {
  const needed = await signUp(store, BASE, "alice", "pw", server.fetch).catch((e: unknown) => e);
  expect(needed).toBeInstanceOf(EmailVerificationNeeded);
  return new EmailSignUp(store, BASE, "alice", "pw", needed as EmailVerificationNeeded, server.fetch);
}

afterEach(() => {
  for (const store of open.splice(0)) store.close();
});

describe("sign-up with an email address", () => {
  it("registers through the dummy flow as before when that is all the server asks", async () => {
    const { store, server } = await setup([["m.login.dummy"]]);
    const session = await signUp(store, BASE, "alice", "pw", server.fetch);
    expect(session).toMatchObject({ userId: "@alice:example.org", accessToken: "token-alice" });
    const requests = server.registerRequests();
    expect(requests).toHaveLength(2);
    expect(requests[0]!.body).not.toHaveProperty("auth");
    expect(requests[1]!.body).toMatchObject({ auth: { type: "m.login.dummy", session: "uia1" } });
    expect(server.requests.some((r) => r.path.includes("requestToken"))).toBe(false);
  });

  it("asks for the address when the server requires it, and registers once it is validated", async () => {
    const { store, server } = await setup([["m.login.email.identity"]]);
    const signup = await startEmail(store, server);
    expect(signup.optional).toBe(false);
    expect(server.registerRequests()).toHaveLength(1); // no dummy attempt

    await signup.sendMail(" alice@example.org ");
    const mail = server.emailSessions[0]!;
    expect(mail).toMatchObject({ email: "alice@example.org", sendAttempt: 1, mailsSent: 1 });
    expect(mail.clientSecret).toMatch(/^[0-9a-zA-Z.=_-]{1,255}$/);

    // Not followed yet: the server's 401 is "not yet", not an error.
    expect(await signup.check()).toBeUndefined();
    expect(server.registerRequests().at(-1)!.body).toMatchObject({
      username: "alice",
      auth: {
        type: "m.login.email.identity",
        threepid_creds: { sid: mail.sid, client_secret: mail.clientSecret },
        session: "uia1",
      },
    });

    await signup.resend();
    expect(mail).toMatchObject({ sendAttempt: 2, mailsSent: 2 });
    expect(server.emailSessions).toHaveLength(1); // the same validation, another mail

    server.validateEmail();
    const session = await signup.check();
    expect(session).toMatchObject({ userId: "@alice:example.org", accessToken: "token-alice" });
    expect(await store.getSession()).toMatchObject({ userId: "@alice:example.org" });
    // Asking again does not register again.
    expect(await signup.check()).toEqual(session);
    expect(server.registered).toEqual(["alice"]);
  });

  it("polls until the link was followed, then stops", async () => {
    const { store, server } = await setup([["m.login.email.identity"]]);
    const signup = await startEmail(store, server);
    await signup.sendMail("alice@example.org");
    const onSession = vi.fn();
    const onError = vi.fn();
    const stop = signup.poll(onSession, onError, 10);
    await vi.waitFor(() => expect(server.registerRequests().length).toBeGreaterThanOrEqual(3));
    expect(onSession).not.toHaveBeenCalled();

    server.validateEmail();
    await vi.waitFor(() => expect(onSession).toHaveBeenCalledTimes(1));
    expect(onSession.mock.calls[0]![0]).toMatchObject({ userId: "@alice:example.org" });
    const count = server.registerRequests().length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(server.registerRequests()).toHaveLength(count);
    expect(onError).not.toHaveBeenCalled();
    stop();
  });

  it("keeps polling through a network failure and a 429, stops on a refusal", async () => {
    const { store, server } = await setup([["m.login.email.identity"]]);
    const signup = await startEmail(store, server);
    await signup.sendMail("alice@example.org");
    server.failNext("/v3/register", "offline", "POST");
    server.failNext("/v3/register", { status: 429, body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 20 } }, "POST");
    server.failNext("/v3/register", { status: 400, body: { errcode: "M_UNKNOWN", error: "Unknown or expired session ID" } }, "POST");
    const onError = vi.fn();
    const stop = signup.poll(() => undefined, onError, 10);
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    expect(onError.mock.calls[0]![0]).toMatchObject({ errcode: "M_UNKNOWN" });
    const count = server.registerRequests().length;
    expect(count).toBe(1 + 3); // the first /register, then three polls
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(server.registerRequests()).toHaveLength(count);
    stop();
  });

  it("says clearly that an address is already in use", async () => {
    const { store, server } = await setup([["m.login.email.identity"]]);
    server.takenEmails.add("taken@example.org");
    const signup = await startEmail(store, server);
    const error = await signup.sendMail("taken@example.org").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MatrixApiError);
    expect(error).toMatchObject({ status: 400, errcode: "M_THREEPID_IN_USE" });
    expect(describeSignUpError(error)).toContain("already used");
    expect(signup.sid).toBeUndefined();
    // Another address works.
    await signup.sendMail("alice@example.org");
    expect(server.emailSessions.map((e) => [e.email, e.sendAttempt])).toEqual([["alice@example.org", 1]]);
  });

  it("describes a denied address and rate limiting", () => {
    expect(describeSignUpError(new MatrixApiError(403, "M_THREEPID_DENIED", "no"))).toContain("does not accept");
    const limited = new MatrixApiError(429, "M_LIMIT_EXCEEDED", "slow", { retry_after_ms: 4200 });
    expect(describeSignUpError(limited)).toContain("Wait 5 seconds");
  });

  it("lets the user skip the address when the server also offers the dummy flow", async () => {
    const { store, server } = await setup([["m.login.dummy"], ["m.login.email.identity"]]);
    const signup = await startEmail(store, server);
    expect(signup.optional).toBe(true);
    const session = await signup.skip();
    expect(session).toMatchObject({ userId: "@alice:example.org" });
    expect(server.registerRequests().at(-1)!.body).toMatchObject({ auth: { type: "m.login.dummy", session: "uia1" } });
  });

  it("still refuses flows it cannot complete", async () => {
    const { store, server } = await setup([["m.login.email.identity", "m.login.recaptcha"]]);
    const error = await signUp(store, BASE, "alice", "pw", server.fetch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistrationStagesError);
  });
});
