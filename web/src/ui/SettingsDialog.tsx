import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import {
  PasswordRequiredError,
  changeAvatar,
  deleteDevice,
  describeApiError,
  getAvatarUrl,
  getDisplayName,
  listDevices,
  renameDevice,
  setDisplayName,
  type Device,
} from "../api/account";
import type { ChatSession } from "../session";
import { useAction } from "./hooks";
import { useMediaUrl } from "./Media";

/** Runs `action`, turning server errors into their message with the errcode. */
async function withApiErrors(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (caught) {
    throw new Error(describeApiError(caught));
  }
}

const submitted = (handler: () => void) => (event: FormEvent) => {
  event.preventDefault();
  handler();
};

/** Account settings: the display name, the avatar and the devices (rename, log out other devices). Uses the
 *  native <dialog> like Modal, but holds several forms, so it closes with its own button. */
export function SettingsDialog({ session, onClose }: { session: ChatSession; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} className="modal settings" aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <h2 id={titleId}>Account settings</h2>
      <p className="hint">Signed in as {session.session.userId}</p>
      <DisplayNameForm session={session} />
      <Devices session={session} />
      <div className="modal-actions">
        <button type="button" className="primary" onClick={onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}

function DisplayNameForm({ session }: { session: ChatSession }) {
  const me = session.session.userId;
  const [name, setName] = useState<string>();
  const [saved, setSaved] = useState(false);
  const load = useAction();
  const save = useAction();
  const id = useId();
  const { run: runLoad } = load;
  useEffect(() => {
    void runLoad(() => withApiErrors(async () => setName((await getDisplayName(session.api, me)) ?? "")));
  }, [session, me]);
  return (
    <section aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Profile</h3>
      <form
        onSubmit={submitted(
          () =>
            void save.run(() =>
              withApiErrors(async () => {
                setSaved(false);
                await setDisplayName(session.api, me, (name ?? "").trim());
                setSaved(true);
              }),
            ),
        )}
      >
        <label htmlFor={`${id}-name`}>Display name</label>
        <div className="inline-form">
          <input
            id={`${id}-name`}
            value={name ?? ""}
            disabled={name === undefined}
            placeholder={name === undefined ? (load.busy ? "Loading…" : "") : me}
            maxLength={256}
            onChange={(e) => {
              setName(e.target.value);
              setSaved(false);
            }}
          />
          <button type="submit" disabled={name === undefined || save.busy}>
            {save.busy ? "Saving…" : "Save"}
          </button>
        </div>
        {(load.error ?? save.error) && (
          <p className="error" role="alert">
            {load.error ?? save.error}
          </p>
        )}
        {saved && (
          <p className="hint" role="status">
            Display name saved.
          </p>
        )}
      </form>
      <AvatarForm session={session} />
    </section>
  );
}

const AVATAR_SIZE = { width: 96, height: 96 };

/** The current avatar (through the authenticated media API) and a picker that uploads an image
 *  and makes it the avatar. */
function AvatarForm({ session }: { session: ChatSession }) {
  const me = session.session.userId;
  // undefined: not loaded yet; null: no avatar.
  const [avatar, setAvatar] = useState<string | null>();
  const [saved, setSaved] = useState(false);
  const load = useAction();
  const save = useAction();
  const id = useId();
  const { run: runLoad } = load;
  useEffect(() => {
    void runLoad(() => withApiErrors(async () => setAvatar((await getAvatarUrl(session.api, me)) ?? null)));
  }, [session, me]);
  const image = useMediaUrl(session, avatar ? session.mediaUrl(avatar, AVATAR_SIZE) : undefined);
  const pick = (file: File | undefined) => {
    if (!file) return;
    void save.run(() =>
      withApiErrors(async () => {
        setSaved(false);
        setAvatar(await changeAvatar(session.api, me, file));
        setSaved(true);
      }),
    );
  };
  const error = load.error ?? save.error ?? image.error;
  return (
    <div className="avatar-form">
      <span className="settings-avatar" aria-hidden={image.src ? undefined : true}>
        {image.src ? <img src={image.src} alt="Your avatar" /> : (me.replace(/^@/, "")[0] ?? "?").toUpperCase()}
      </span>
      <div className="avatar-form-controls">
        <label htmlFor={`${id}-avatar`}>Avatar</label>
        <input
          id={`${id}-avatar`}
          type="file"
          accept="image/*"
          disabled={avatar === undefined || save.busy}
          onChange={(e) => {
            pick(e.target.files?.[0]);
            e.target.value = "";
          }}
        />
        {save.busy && <p role="status">Uploading…</p>}
        {avatar === null && !save.busy && <p className="hint">No avatar set.</p>}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {saved && (
          <p className="hint" role="status">
            Avatar saved.
          </p>
        )}
      </div>
    </div>
  );
}

function Devices({ session }: { session: ChatSession }) {
  const [devices, setDevices] = useState<Device[]>();
  const { error, run } = useAction();
  const id = useId();
  const reload = useCallback(
    () => run(() => withApiErrors(async () => setDevices(await listDevices(session.api)))),
    // `run` is a new function every render; loading depends on the session only.
    [session],
  );
  useEffect(() => {
    void reload();
  }, [reload]);
  const current = session.session.deviceId;
  return (
    <section aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Devices</h3>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {devices === undefined ? (
        !error && <p role="status">Loading…</p>
      ) : (
        <ul className="devices">
          {devices.map((device) => (
            <DeviceRow
              key={device.deviceId}
              session={session}
              device={device}
              current={device.deviceId === current}
              onChanged={() => void reload()}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

type RowMode = { kind: "idle" } | { kind: "rename" } | { kind: "confirm" } | { kind: "password"; session: string | undefined };

function DeviceRow({ session, device, current, onChanged }: {
  session: ChatSession;
  device: Device;
  current: boolean;
  onChanged: () => void;
}) {
  const [mode, setMode] = useState<RowMode>({ kind: "idle" });
  const [newName, setNewName] = useState("");
  const [password, setPassword] = useState("");
  const [passwordError, setPasswordError] = useState<string>();
  const renaming = useAction();
  const deleting = useAction();
  const id = useId();
  const label = device.displayName || device.deviceId;
  const seen = [
    device.lastSeenTs ? `last seen ${new Date(device.lastSeenTs).toLocaleString()}` : undefined,
    device.lastSeenIp ? `from ${device.lastSeenIp}` : undefined,
  ]
    .filter(Boolean)
    .join(" ");

  const remove = (auth?: { password: string; session: string | undefined }) =>
    void deleting.run(async () => {
      try {
        await deleteDevice(
          session.api,
          device.deviceId,
          auth && { user: session.session.userId, password: auth.password, session: auth.session },
        );
      } catch (caught) {
        if (caught instanceof PasswordRequiredError) {
          setPasswordError(auth ? caught.message : undefined);
          setPassword("");
          setMode({ kind: "password", session: caught.session });
          return;
        }
        throw new Error(describeApiError(caught));
      }
      setMode({ kind: "idle" });
      onChanged();
    });

  const shownError =
    mode.kind === "rename"
      ? renaming.error
      : mode.kind === "confirm"
        ? deleting.error
        : mode.kind === "password"
          ? deleting.error ?? passwordError
          : undefined;

  return (
    <li className="device">
      <div className="device-info">
        <span id={`${id}-name`} className="device-name">
          {label}
          {current && <span className="device-current"> (this device)</span>}
        </span>
        <span className="hint">
          {device.deviceId}
          {seen && ` · ${seen}`}
        </span>
      </div>
      {mode.kind === "idle" && (
        <div className="device-actions">
          <button
            type="button"
            aria-label={`Rename ${label}`}
            onClick={() => {
              setNewName(device.displayName ?? "");
              setMode({ kind: "rename" });
            }}
          >
            Rename
          </button>
          {!current && (
            <button type="button" className="danger" aria-label={`Delete ${label}`} onClick={() => setMode({ kind: "confirm" })}>
              Delete
            </button>
          )}
        </div>
      )}
      {mode.kind === "rename" && (
        <form
          className="inline-form"
          onSubmit={submitted(
            () =>
              void renaming.run(() =>
                withApiErrors(async () => {
                  await renameDevice(session.api, device.deviceId, newName.trim());
                  setMode({ kind: "idle" });
                  onChanged();
                }),
              ),
          )}
        >
          <label className="visually-hidden" htmlFor={`${id}-rename`}>
            New name for {label}
          </label>
          <input id={`${id}-rename`} autoFocus maxLength={100} value={newName} onChange={(e) => setNewName(e.target.value)} />
          <button type="submit" className="primary" disabled={renaming.busy}>
            Save
          </button>
          <button type="button" onClick={() => setMode({ kind: "idle" })}>
            Cancel
          </button>
        </form>
      )}
      {mode.kind === "confirm" && (
        <div className="inline-form" role="group" aria-label={`Delete ${label}`}>
          <span>Log this device out?</span>
          <button type="button" className="danger" autoFocus disabled={deleting.busy} onClick={() => remove()}>
            {deleting.busy ? "Please wait…" : "Delete device"}
          </button>
          <button type="button" onClick={() => setMode({ kind: "idle" })}>
            Cancel
          </button>
        </div>
      )}
      {mode.kind === "password" && (
        <form className="inline-form" onSubmit={submitted(() => remove({ password, session: mode.session }))}>
          <label className="visually-hidden" htmlFor={`${id}-password`}>
            Your password, to delete {label}
          </label>
          <input
            id={`${id}-password`}
            type="password"
            autoFocus
            required
            autoComplete="current-password"
            placeholder="Your password"
            aria-invalid={passwordError ? true : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <button type="submit" className="danger" disabled={deleting.busy}>
            {deleting.busy ? "Please wait…" : "Delete device"}
          </button>
          <button type="button" onClick={() => setMode({ kind: "idle" })}>
            Cancel
          </button>
        </form>
      )}
      {shownError && (
        <p className="error" role="alert">
          {shownError}
        </p>
      )}
    </li>
  );
}
