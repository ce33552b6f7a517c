import type { SyncStatus } from "../sync/loop";

const LABELS: Record<SyncStatus, string> = {
  online: "Online",
  connecting: "Connecting…",
  offline: "Offline",
  stopped: "Offline",
  loggedOut: "Logged out",
};

/** Online/offline, announced to screen readers when it changes. */
export function StatusIndicator({ status, browserOnline, pending }: {
  status: SyncStatus;
  browserOnline: boolean;
  pending: number;
}) {
  const effective: SyncStatus = browserOnline ? status : "offline";
  const waiting = pending > 0 ? ` · ${pending} waiting to send` : "";
  return (
    <span className={`status status-${effective}`} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {LABELS[effective]}
      {waiting}
    </span>
  );
}
