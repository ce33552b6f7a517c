import { useEffect, useState } from "react";
import type { Session } from "../api/client";
import { ChatSession } from "../session";
import { Store } from "../store/store";
import { AuthScreen } from "./AuthScreen";
import { ChatShell } from "./ChatShell";

type Phase =
  | { kind: "opening" }
  | { kind: "broken"; message: string }
  | { kind: "signedOut"; store: Store; notice?: string }
  | { kind: "signedIn"; store: Store; session: ChatSession };

const signedIn = (store: Store, saved: Session): Phase => ({ kind: "signedIn", store, session: new ChatSession(store, saved) });

/** Opens the store, then shows the saved session (before any network) or the auth screen. */
export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "opening" });

  useEffect(() => {
    let live = true;
    Store.open()
      .then(async (store) => {
        const saved = await store.getSession();
        if (!live) return;
        setPhase(
          saved
            ? signedIn(store, saved)
            : { kind: "signedOut", store },
        );
      })
      .catch((error: unknown) => {
        if (live) setPhase({ kind: "broken", message: String(error) });
      });
    return () => {
      live = false;
    };
  }, []);

  // Another tab logged in or out: this one follows (they share the store).
  const store = phase.kind === "signedIn" || phase.kind === "signedOut" ? phase.store : undefined;
  const isSignedIn = phase.kind === "signedIn";
  useEffect(() => {
    if (!store) return;
    return store.subscribe((kind, fromOtherTab) => {
      if (kind !== "session" || !fromOtherTab) return;
      void store.getSession().then((saved) => {
        if (saved && !isSignedIn) setPhase(signedIn(store, saved));
        if (!saved && isSignedIn) setPhase({ kind: "signedOut", store });
      });
    });
  }, [store, isSignedIn]);

  const session = phase.kind === "signedIn" ? phase.session : undefined;
  useEffect(() => {
    if (!session) return;
    session.start();
    const off = session.onStatus((status) => {
      if (status !== "loggedOut") return;
      // The server no longer knows our token: forget the account on this device.
      void session.store.clear().then(() =>
        setPhase({ kind: "signedOut", store: session.store, notice: "Your session has ended. Please log in again." }),
      );
    });
    return () => {
      off();
      void session.stop();
    };
  }, [session]);

  switch (phase.kind) {
    case "opening":
      return (
        <div className="splash" role="status">
          Opening…
        </div>
      );
    case "broken":
      return (
        <div className="splash" role="alert">
          This browser does not let the app keep data (IndexedDB): {phase.message}
        </div>
      );
    case "signedOut":
      return (
        <AuthScreen
          store={phase.store}
          notice={phase.notice}
          onSession={(saved) => setPhase(signedIn(phase.store, saved))}
        />
      );
    case "signedIn":
      return (
        <ChatShell
          session={phase.session}
          onLoggedOut={() => setPhase({ kind: "signedOut", store: phase.store })}
        />
      );
  }
}
