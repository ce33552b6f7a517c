// Images and files in the timeline, and the composer's attach button. Media is fetched with the
// access token (authenticated media API) into object URLs through session.media (a BlobCache);
// a pending attachment not uploaded yet is shown from its own Blob, kept in the outbox.

import { useEffect, useRef, useState, useSyncExternalStore, type ChangeEvent } from "react";
import { fitWithin, formatSize } from "../api/media";
import { describeError, type ChatSession } from "../session";
import type { OutboxAttachment } from "../store/schema";
import type { TimelineItem } from "./model";
import { Icon } from "./Icon";

type MessageItem = Extract<TimelineItem, { kind: "message" }>;

/** The box thumbnails are laid out in, and the size asked of the server (for sharp HiDPI). */
const BOX = { width: 320, height: 240 };
const THUMBNAIL = { width: 640, height: 480 };

/** An object URL for an authenticated media URL, held while the component is mounted. */
export function useMediaUrl(session: ChatSession, url: string | undefined): { src?: string; error?: string } {
  const [state, setState] = useState<{ url?: string; src?: string; error?: string }>({});
  useEffect(() => {
    if (!url) return;
    let live = true;
    let failed = false;
    session.media.acquire(url).then(
      (src) => live && setState({ url, src }),
      (error: unknown) => {
        failed = true; // a failed acquire holds nothing: no release
        if (live) setState({ url, error: describeError(error) });
      },
    );
    return () => {
      live = false;
      if (!failed) session.media.release(url);
    };
  }, [session, url]);
  return state.url === url ? { src: state.src, error: state.error } : {};
}

/** An object URL for a local Blob (a pending upload), revoked when unmounted. */
function useLocalUrl(file: Blob | undefined): string | undefined {
  const [src, setSrc] = useState<string>();
  useEffect(() => {
    if (!file) return;
    const url = URL.createObjectURL(file);
    setSrc(url);
    return () => {
      URL.revokeObjectURL(url);
      setSrc(undefined);
    };
  }, [file]);
  return src;
}

function infoOf(item: MessageItem): Record<string, unknown> {
  const info = item.event.content["info"];
  return typeof info === "object" && info !== null && !Array.isArray(info) ? (info as Record<string, unknown>) : {};
}

/** Whether a message is an image or file this module renders. */
export function isMediaMessage(item: MessageItem): boolean {
  const msgtype = item.event.content["msgtype"];
  return (msgtype === "m.image" || msgtype === "m.file") && (typeof item.event.content["url"] === "string" || !!item.attachment);
}

export function MessageMedia({ session, item }: { session: ChatSession; item: MessageItem }) {
  const content = item.event.content;
  const name = typeof content["body"] === "string" && content["body"] ? content["body"] : "file";
  const mxc = typeof content["url"] === "string" ? content["url"] : undefined;
  if (content["msgtype"] === "m.image") {
    return <MediaImage session={session} mxc={mxc} local={item.attachment} name={name} info={infoOf(item)} />;
  }
  return <MediaFile session={session} mxc={mxc} name={name} info={infoOf(item)} />;
}

function MediaImage({ session, mxc, local, name, info }: {
  session: ChatSession;
  mxc: string | undefined;
  local: OutboxAttachment | undefined;
  name: string;
  info: Record<string, unknown>;
}) {
  // The thumbnail first; if the server cannot make one, the image itself. An image no bigger
  // than the thumbnail, or an animated GIF, is fetched as it is.
  const small = typeof info["w"] === "number" && typeof info["h"] === "number" &&
    info["w"] <= THUMBNAIL.width && info["h"] <= THUMBNAIL.height;
  const [full, setFull] = useState(small || info["mimetype"] === "image/gif");
  const [open, setOpen] = useState(false);
  const remote = useMediaUrl(session, local ? undefined : session.mediaUrl(mxc, full ? undefined : THUMBNAIL));
  const localSrc = useLocalUrl(local?.file);
  useEffect(() => {
    if (remote.error && !full) setFull(true);
  }, [remote.error, full]);
  const src = local ? localSrc : remote.src;
  const size = fitWithin(info, BOX.width, BOX.height);
  // The event's w/h reserve the space before the image arrives: no jump of the timeline.
  const style = size ? { width: size.width, height: size.height } : undefined;
  const failed = !local && full && remote.error;
  return (
    <>
      <button
        type="button"
        className="media-image"
        style={style}
        aria-label={`Open image ${name}`}
        disabled={!mxc}
        onClick={() => setOpen(true)}
      >
        {src ? (
          <img src={src} alt={name} width={size?.width} height={size?.height} />
        ) : (
          <span className="media-placeholder" aria-busy={!failed}>
            {failed ? `Could not load ${name}` : "Loading image…"}
          </span>
        )}
      </button>
      {open && mxc && <ImageViewer session={session} mxc={mxc} name={name} onClose={() => setOpen(false)} />}
    </>
  );
}

/** The full image, in a modal dialog. */
function ImageViewer({ session, mxc, name, onClose }: { session: ChatSession; mxc: string; name: string; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const { src, error } = useMediaUrl(session, session.mediaUrl(mxc));
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} className="modal image-viewer" aria-label={name} onClose={onClose} onCancel={onClose}>
      <div className="image-viewer-bar">
        <span>{name}</span>
        {src && (
          <a href={src} download={name} className="link">
            Download
          </a>
        )}
        <button type="button" className="link" aria-label="Close image" onClick={onClose}>
          Close
        </button>
      </div>
      {src ? (
        <img src={src} alt={name} />
      ) : error ? (
        <p className="error" role="alert">
          Could not load the image: {error}
        </p>
      ) : (
        <p aria-busy="true">Loading…</p>
      )}
    </dialog>
  );
}

function MediaFile({ session, mxc, name, info }: {
  session: ChatSession;
  mxc: string | undefined;
  name: string;
  info: Record<string, unknown>;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const url = session.mediaUrl(mxc);
  const download = async () => {
    if (!url) return;
    setBusy(true);
    setError(undefined);
    try {
      // Fetched with the token into a Blob; a link with `download` saves it under its name.
      const objectUrl = await session.media.acquire(url);
      const link = document.createElement("a");
      link.href = objectUrl;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      session.media.release(url); // revoked after the cache's grace period
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  const size = formatSize(info["size"]);
  return (
    <div className="media-file">
      <span className="media-file-icon" aria-hidden="true">
        <Icon name="file" />
      </span>
      <span className="media-file-name">{name}</span>
      {size && <span className="media-file-size">{size}</span>}
      {url && (
        <button type="button" className="link" aria-label={`Download ${name}`} disabled={busy} onClick={() => void download()}>
          {busy ? "Downloading…" : "Download"}
        </button>
      )}
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

/** The upload of a pending attachment: a progress bar and a way to cancel. */
export function UploadProgress({ session, txnId, name }: { session: ChatSession; txnId: string; name: string }) {
  const outbox = session.outbox;
  const state = useSyncExternalStore(
    (listener) => outbox.onUploadProgress(listener),
    () => outbox.uploadState(txnId),
  );
  return (
    <span className="upload-progress">
      {state && (
        <progress
          aria-label={`Uploading ${name}`}
          max={state.total || 1}
          value={state.loaded}
        />
      )}
      <button type="button" className="link" aria-label={`Cancel sending ${name}`} onClick={() => void outbox.discard(txnId)}>
        Cancel
      </button>
    </span>
  );
}

/** The composer's attach button: the files go to the outbox (uploaded when online). */
export function AttachButton({ onFiles, online }: { onFiles: (files: File[]) => void; online: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  const onChange = (event: ChangeEvent<HTMLInputElement>) => {
    const files = [...(event.target.files ?? [])];
    event.target.value = ""; // the same file may be picked again
    if (files.length > 0) onFiles(files);
  };
  return (
    <>
      <input ref={input} type="file" multiple hidden onChange={onChange} aria-hidden="true" tabIndex={-1} />
      <button
        type="button"
        className="icon attach"
        aria-label="Attach a file"
        title={online ? "Attach a file" : "Attach a file (it is uploaded when the network is back)"}
        onClick={() => input.current?.click()}
      >
        <Icon name="attach" />
      </button>
    </>
  );
}
