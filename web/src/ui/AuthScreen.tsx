import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { EmailVerificationNeeded, NetworkError, RegistrationStagesError, type Session } from "../api/client";
import { EmailSignUp, describeError, describeSignUpError, logIn, signUp } from "../session";
import type { Store } from "../store/store";

interface Props {
  store: Store;
  notice?: string | undefined;
  onSession: (session: Session) => void;
}

/** Log in or sign up. The homeserver is the page's own origin unless the user changes it. */
export function AuthScreen({ store, notice, onSession }: Props) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [homeserver, setHomeserver] = useState(() => window.location.origin);
  const [showServer, setShowServer] = useState(false);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  /** Set when the server wants an email address validated before it creates the account. */
  const [emailSignUp, setEmailSignUp] = useState<EmailSignUp | undefined>();
  const ids = useId();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(undefined);
    if (mode === "register" && password !== confirm) {
      setError("The passwords do not match.");
      return;
    }
    setBusy(true);
    try {
      const act = mode === "login" ? logIn : signUp;
      onSession(await act(store, homeserver, username.trim(), password));
    } catch (caught) {
      if (caught instanceof EmailVerificationNeeded) {
        setEmailSignUp(new EmailSignUp(store, homeserver, username.trim(), password, caught));
      } else if (caught instanceof RegistrationStagesError) {
        setError(`${caught.message} Sign up with another client, then log in here.`);
      } else if (caught instanceof NetworkError) {
        setError(`Could not reach ${homeserver}. Check the address and your connection.`);
      } else {
        setError(describeError(caught));
      }
    } finally {
      setBusy(false);
    }
  }

  if (emailSignUp) {
    return (
      <EmailStep
        signup={emailSignUp}
        onSession={onSession}
        onBack={() => {
          setEmailSignUp(undefined);
          setError(undefined);
        }}
      />
    );
  }

  const title = mode === "login" ? "Welcome back" : "Create an account";
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-labelledby={`${ids}-title`}>
        <h1 id={`${ids}-title`}>{title}</h1>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <div className="tabs" role="tablist" aria-label="Log in or sign up">
          <button
            type="button"
            role="tab"
            aria-selected={mode === "login"}
            onClick={() => setMode("login")}
          >
            Log in
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === "register"}
            onClick={() => setMode("register")}
          >
            Sign up
          </button>
        </div>
        <label htmlFor={`${ids}-user`}>Username</label>
        <input
          id={`${ids}-user`}
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          placeholder={mode === "login" ? "alice or @alice:example.org" : "alice"}
        />
        <label htmlFor={`${ids}-password`}>Password</label>
        <input
          id={`${ids}-password`}
          type="password"
          autoComplete={mode === "login" ? "current-password" : "new-password"}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {mode === "register" && (
          <>
            <label htmlFor={`${ids}-confirm`}>Confirm password</label>
            <input
              id={`${ids}-confirm`}
              type="password"
              autoComplete="new-password"
              required
              value={confirm}
              onChange={(e) => setConfirm(e.target.value)}
            />
          </>
        )}
        {showServer ? (
          <>
            <label htmlFor={`${ids}-server`}>Homeserver</label>
            <input
              id={`${ids}-server`}
              type="url"
              inputMode="url"
              required
              value={homeserver}
              onChange={(e) => setHomeserver(e.target.value)}
            />
          </>
        ) : (
          <p className="server-line">
            On <strong>{homeserver}</strong>{" "}
            <button type="button" className="link" onClick={() => setShowServer(true)}>
              Change
            </button>
          </p>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Please wait…" : mode === "login" ? "Log in" : "Sign up"}
        </button>
      </form>
    </main>
  );
}

/** The address to validate, then "open the link in the mail" while polling the server. */
function EmailStep({
  signup,
  onSession,
  onBack,
}: {
  signup: EmailSignUp;
  onSession: (session: Session) => void;
  onBack: () => void;
}) {
  const [email, setEmail] = useState(signup.email ?? "");
  const [sentTo, setSentTo] = useState<string | undefined>(signup.sid ? signup.email : undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [info, setInfo] = useState<string | undefined>();
  const ids = useId();
  // The button and the poll may both see the account created: hand it over once.
  const handOver = useRef(onSession);
  useEffect(() => {
    handOver.current = onSession;
  });
  /** Bumped by each mail sent: (re)starts the poll, which stops on an error. */
  const [pollRound, setPollRound] = useState(0);
  const finished = useRef(false);
  const finish = (session: Session) => {
    if (finished.current) return;
    finished.current = true;
    handOver.current(session);
  };

  // While the mail is out, ask the server every few seconds whether the link was followed.
  useEffect(() => {
    if (!sentTo) return;
    return signup.poll(finish, (caught) => setError(describeSignUpError(caught)));
    // `finish` reads refs only.
  }, [signup, sentTo, pollRound]);

  async function run(action: () => Promise<void>) {
    setBusy(true);
    setError(undefined);
    setInfo(undefined);
    try {
      await action();
    } catch (caught) {
      setError(describeSignUpError(caught));
    } finally {
      setBusy(false);
    }
  }

  function send(event: FormEvent) {
    event.preventDefault();
    void run(async () => {
      await signup.sendMail(email);
      setSentTo(signup.email);
      setPollRound((n) => n + 1);
    });
  }

  const confirmed = () =>
    run(async () => {
      const session = await signup.check();
      if (session) finish(session);
      else setInfo("The server has not seen the link followed yet. Open the link in the mail, then try again.");
    });

  const resend = () =>
    run(async () => {
      await signup.resend();
      setPollRound((n) => n + 1);
      setInfo(`Another mail is on its way to ${signup.email}.`);
    });

  const skip = () => run(async () => finish(await signup.skip()));

  const messages = (
    <>
      {info && (
        <p className="notice" role="status">
          {info}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </>
  );

  if (sentTo) {
    return (
      <main className="auth">
        <div className="auth-card" role="region" aria-labelledby={`${ids}-title`}>
          <h1 id={`${ids}-title`}>Check your email</h1>
          <p>
            We sent a link to <strong>{sentTo}</strong>. Open it to confirm the address; this page
            goes on by itself once you have.
          </p>
          {messages}
          <button type="button" className="primary" disabled={busy} onClick={() => void confirmed()}>
            {busy ? "Please wait…" : "I've confirmed"}
          </button>
          <p className="auth-actions">
            <button type="button" className="link" disabled={busy} onClick={() => void resend()}>
              Send the mail again
            </button>
            <button
              type="button"
              className="link"
              disabled={busy}
              onClick={() => {
                signup.reset();
                setSentTo(undefined);
                setError(undefined);
                setInfo(undefined);
              }}
            >
              Use another address
            </button>
            <button type="button" className="link" disabled={busy} onClick={onBack}>
              Back
            </button>
          </p>
        </div>
      </main>
    );
  }

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={send} aria-labelledby={`${ids}-title`}>
        <h1 id={`${ids}-title`}>Your email address</h1>
        <p>
          {signup.optional
            ? "This server can link an email address to your account (to reset a forgotten password, for instance). It is optional."
            : "This server needs an email address to create your account. We will send you a link to confirm it."}
        </p>
        <label htmlFor={`${ids}-email`}>Email address</label>
        <input
          id={`${ids}-email`}
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        {messages}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Please wait…" : "Send the confirmation mail"}
        </button>
        <p className="auth-actions">
          {signup.optional && (
            <button type="button" className="link" disabled={busy} onClick={() => void skip()}>
              Skip, sign up without an address
            </button>
          )}
          <button type="button" className="link" disabled={busy} onClick={onBack}>
            Back
          </button>
        </p>
      </form>
    </main>
  );
}
