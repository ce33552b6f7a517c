import { useId, useState, type FormEvent } from "react";
import { NetworkError, RegistrationStagesError, type Session } from "../api/client";
import { describeError, logIn, signUp } from "../session";
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
      if (caught instanceof RegistrationStagesError) {
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
