import { useEffect, useState } from "react";
import { disablePush, enablePush, pushState, type PushState } from "../push/browser";
import { describeError, type ChatSession } from "../session";

/** The notifications setting: on when the server offers Web Push (`m.webpush`) and the user
 *  allows it; otherwise it says why it cannot be. Asks the server, so it needs the network. */
export function NotificationSetting({ session, online }: { session: ChatSession; online: boolean }) {
  const [state, setState] = useState<PushState>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    if (!online || state) return;
    let live = true;
    pushState(session.api)
      .then((found) => live && setState(found))
      .catch(() => undefined); // offline or an old server: asked again when online
    return () => {
      live = false;
    };
  }, [session, online, state]);

  const toggle = async () => {
    if (!state || (state.kind !== "on" && state.kind !== "off")) return;
    setBusy(true);
    setError(undefined);
    try {
      setState(await (state.kind === "on" ? disablePush(session.api, state.vapid) : enablePush(session.api, state.vapid)));
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  let label: string;
  if (!state) label = online ? "Notifications: checking…" : "Notifications: offline";
  else if (state.kind === "unavailable") label = `Notifications unavailable: ${state.reason}`;
  else if (state.kind === "denied") label = "Notifications are blocked in the browser's site settings";
  else label = "Notifications";

  return (
    <div className="notification-setting">
      {state?.kind === "on" || state?.kind === "off" ? (
        <label>
          <input
            type="checkbox"
            role="switch"
            checked={state.kind === "on"}
            disabled={busy || !online}
            aria-describedby={error ? "notification-error" : undefined}
            onChange={() => void toggle()}
          />{" "}
          {label}
        </label>
      ) : (
        <span className="hint" role="status">
          {label}
        </span>
      )}
      {error && (
        <p className="error" id="notification-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
