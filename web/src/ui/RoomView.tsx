import { useCallback, useEffect, useId, useLayoutEffect, useRef, useState, type ClipboardEvent, type DragEvent, type KeyboardEvent } from "react";
import type { RoomEvent } from "../api/types";
import { describeError, type ChatSession } from "../session";
import type { MemberRecord, RoomRecord } from "../store/schema";
import { useAction, useStoreData } from "./hooks";
import { AttachButton, MessageMedia, UploadProgress, isMediaMessage } from "./Media";
import { backToken, memberName, reachedStart, timeLabel, timelineItems, typingText, type TimelineItem } from "./model";
import { receiptToSend } from "./receipts";
import { TypingNotifier } from "./typing";
import { Icon } from "./Icon";

/** What the composer is doing to an existing message. */
type Draft = { kind: "reply" | "edit"; eventId: string; sender: string; body: string };

const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

interface Props {
  session: ChatSession;
  room: RoomRecord;
  title: string;
  online?: boolean;
}

/** One room: its timeline (stored, then older pages, then the outbox) and the composer. */
export function RoomView({ session, room, title, online = true }: Props) {
  const store = session.store;
  const me = session.session.userId;
  const roomId = room.roomId;
  const data = useStoreData(
    store,
    async () => {
      const [stored, outbox, members] = await Promise.all([
        store.getTimeline(roomId),
        store.listOutbox(roomId),
        store.getMembers(roomId),
      ]);
      return { roomId, stored, outbox, members: new Map(members.map((m) => [m.userId, m])) };
    },
    [roomId],
  );
  const [draft, setDraft] = useState<Draft>();

  if (room.membership === "invite") return <InviteBanner session={session} room={room} title={title} />;

  return (
    <div className="room">
      {data && data.roomId === roomId ? (
        <Timeline
          key={roomId}
          session={session}
          roomId={roomId}
          title={title}
          me={me}
          stored={data.stored}
          outbox={data.outbox}
          members={data.members}
          online={online}
          room={room}
          onDraft={setDraft}
        />
      ) : (
        <div className="timeline" aria-busy="true" />
      )}
      <p className="typing" aria-live="polite">
        {data ? typingText(room.typing, data.members) : ""}
      </p>
      <Composer
        key={draft ? `${draft.kind}-${draft.eventId}` : "new"}
        session={session}
        roomId={roomId}
        title={title}
        draft={draft}
        onDone={() => setDraft(undefined)}
        members={data?.members ?? new Map()}
        online={online}
      />
    </div>
  );
}

function InviteBanner({ session, room, title }: Props) {
  const { busy, error, run: act } = useAction();
  return (
    <div className="invite">
      <p>
        {room.inviter ? `${room.inviter} invited you to ` : "You are invited to "}
        <strong>{title}</strong>.
      </p>
      <div className="modal-actions">
        <button type="button" disabled={busy} onClick={() => void act(() => session.leaveRoom(room.roomId))}>
          Decline
        </button>
        <button type="button" className="primary" disabled={busy} onClick={() => void act(() => session.acceptInvite(room))}>
          Accept
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

interface TimelineProps {
  session: ChatSession;
  roomId: string;
  title: string;
  me: string;
  stored: Awaited<ReturnType<ChatSession["store"]["getTimeline"]>>;
  outbox: Awaited<ReturnType<ChatSession["store"]["listOutbox"]>>;
  members: Map<string, MemberRecord>;
  online: boolean;
  room: RoomRecord;
  onDraft: (draft: Draft) => void;
}

function Timeline({ session, roomId, title, me, stored, outbox, members, online, room, onDraft }: TimelineProps) {
  const keysHintId = useId();
  const [older, setOlder] = useState<RoomEvent[]>([]);
  // undefined: start from the stored timeline's token; null: nothing older exists.
  const [olderToken, setOlderToken] = useState<string | null | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string>();
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const heightBefore = useRef<number | null>(null);

  const items = timelineItems(stored, older, outbox, me, members);
  const start = olderToken === null || reachedStart(stored, older);
  const token = olderToken ?? backToken(stored);

  const loadOlder = useCallback(async () => {
    if (loading || start || !token) return;
    setLoading(true);
    setError(undefined);
    heightBefore.current = scroller.current?.scrollHeight ?? null;
    try {
      const page = await session.loadOlder(roomId, token);
      setOlder((current) => [...page.events, ...current]);
      setOlderToken(page.end ?? null);
    } catch (caught) {
      heightBefore.current = null;
      setError(describeError(caught));
    } finally {
      setLoading(false);
    }
  }, [loading, start, token, session, roomId]);

  // Keep the view where the reader is: at the bottom for new messages, still after older ones.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    if (heightBefore.current !== null) {
      element.scrollTop += element.scrollHeight - heightBefore.current;
      heightBefore.current = null;
    } else if (atBottom.current) {
      element.scrollTop = element.scrollHeight;
    }
  }, [items.length]);

  // A short room does not scroll, so scrolling cannot ask for more: fill the screen once.
  useEffect(() => {
    const element = scroller.current;
    if (element && element.scrollHeight <= element.clientHeight && !start && token && !error) {
      void loadOlder();
    }
  }, [stored.length, older.length, start, token, error, loadOlder]);

  // Read receipts: once the newest event is on screen in a visible window (see receipts.ts).
  const [seeingNewest, setSeeingNewest] = useState(true);
  const visible = usePageVisible();
  const lastSent = useRef<string | undefined>(undefined);
  useEffect(() => {
    const eventId = receiptToSend({ stored, room, me, lastSent: lastSent.current, visible, atBottom: seeingNewest });
    if (!eventId || !online) return;
    lastSent.current = eventId;
    session.markRead(roomId, eventId).catch(() => {
      if (lastSent.current === eventId) lastSent.current = undefined; // try again on the next change
    });
  }, [stored, room, me, visible, seeingNewest, online, session, roomId]);

  const onScroll = () => {
    const element = scroller.current;
    if (!element) return;
    atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
    setSeeingNewest(atBottom.current);
    if (element.scrollTop < 120) void loadOlder();
  };

  return (
    <div
      className="timeline"
      ref={scroller}
      onScroll={onScroll}
      onKeyDown={moveBetweenMessages}
      tabIndex={0}
      aria-label={`Messages in ${title}`}
      aria-describedby={keysHintId}
    >
      <p className="visually-hidden" id={keysHintId}>
        Up and down arrow keys move between messages; Tab then reaches the message&apos;s actions.
      </p>
      <div className="timeline-top">
        {start ? (
          <p className="hint">This is the beginning of {title}.</p>
        ) : (
          <button type="button" className="link" onClick={() => void loadOlder()} disabled={loading || !token}>
            {loading ? "Loading older messages…" : "Load older messages"}
          </button>
        )}
        {error && (
          <p className="error" role="alert">
            Could not load older messages: {error}
          </p>
        )}
      </div>
      <ol className="messages" role="log" aria-live="polite" aria-relevant="additions">
        {items.map((item) => (
          <TimelineRow
            key={item.key}
            item={item}
            session={session}
            roomId={roomId}
            me={me}
            members={members}
            online={online}
            onDraft={onDraft}
          />
        ))}
      </ol>
    </div>
  );
}

/** Arrow keys in the timeline focus the previous or next message (whose actions then show,
 *  and are next in the Tab order); the first press picks the newest. */
function moveBetweenMessages(event: KeyboardEvent<HTMLDivElement>): void {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  const messages = [...event.currentTarget.querySelectorAll<HTMLElement>("li.message")];
  if (messages.length === 0) return;
  const current = messages.findIndex((li) => li.contains(document.activeElement));
  const step = event.key === "ArrowUp" ? -1 : 1;
  const next = current < 0 ? messages.length - 1 : Math.min(messages.length - 1, Math.max(0, current + step));
  event.preventDefault();
  messages[next]!.focus();
}

function TimelineRow({ item, session, roomId, me, members, online, onDraft }: {
  item: TimelineItem;
  session: ChatSession;
  roomId: string;
  me: string;
  members: Map<string, MemberRecord>;
  online: boolean;
  onDraft: (draft: Draft) => void;
}) {
  if (item.kind === "day") {
    return (
      <li className="day" role="separator" aria-label={item.label}>
        <span>{item.label}</span>
      </li>
    );
  }
  if (item.kind === "notice") {
    return <li className="notice-row">{item.text}</li>;
  }
  const { event } = item;
  const name = memberName(event.sender, members);
  const body = item.body;
  const emote = event.content["msgtype"] === "m.emote";
  const sent = !item.pending && !event.event_id.startsWith("~");
  const time = timeLabel(event.origin_server_ts);
  const classes = ["message", item.continued ? "continued" : "", item.pending ? `is-${item.pending}` : ""];
  return (
    <li className={classes.join(" ")} tabIndex={-1}>
      {!item.continued && (
        <div className="message-head">
          <span className="avatar" aria-hidden="true">
            {name.slice(0, 1).toUpperCase()}
          </span>
          <span className="sender">{name}</span>
          <time dateTime={new Date(event.origin_server_ts).toISOString()}>{time}</time>
        </div>
      )}
      {item.replyTo && (
        <p className="reply-quote">
          <span className="visually-hidden">In reply to </span>
          {item.replyTo.sender ? <strong>{memberName(item.replyTo.sender, members)}</strong> : "a message"}
          {item.replyTo.body !== undefined && <> {item.replyTo.body}</>}
        </p>
      )}
      <div className="body">
        {item.continued && <span className="visually-hidden">{name}, {time}: </span>}
        {item.redacted ? (
          <em className="deleted">Message deleted</em>
        ) : emote ? (
          <em>* {name} {body}</em>
        ) : isMediaMessage(item) ? (
          <MessageMedia session={session} item={item} />
        ) : (
          body
        )}
        {item.edited && <span className="edited"> (edited)</span>}
      </div>
      {item.reactions && item.reactions.length > 0 && (
        <ul className="reactions" aria-label="Reactions">
          {item.reactions.map((reaction) => (
            <li key={reaction.key}>
              <button
                type="button"
                className={`reaction${reaction.mine ? " mine" : ""}`}
                aria-pressed={reaction.mine !== undefined}
                aria-label={`${reaction.key} ${reaction.count}: ${reaction.senders.map((s) => memberName(s, members)).join(", ")}`}
                title={reaction.senders.map((s) => memberName(s, members)).join(", ")}
                onClick={() => void session.toggleReaction(roomId, event.event_id, reaction.key, reaction.mine)}
              >
                {reaction.key} {reaction.count}
              </button>
            </li>
          ))}
        </ul>
      )}
      {sent && !item.redacted && (
        <MessageActions
          session={session}
          roomId={roomId}
          item={item}
          mine={event.sender === me}
          onDraft={(kind) => onDraft({ kind, eventId: event.event_id, sender: event.sender, body })}
        />
      )}
      {item.pending === "pending" && (
        <span className="pending-label">{online ? "Sending…" : "Waiting for the network…"}</span>
      )}
      {item.pending === "pending" && item.attachment && item.txnId && (
        <UploadProgress session={session} txnId={item.txnId} name={item.attachment.fileName} />
      )}
      {item.pending === "failed" && item.txnId && (
        <span className="pending-label failed" role="alert">
          Not sent: {item.error ?? "refused by the server"}{" "}
          <button type="button" className="link" onClick={() => void session.outbox.retry(item.txnId!)}>
            Retry
          </button>{" "}
          <button type="button" className="link" onClick={() => void session.outbox.discard(item.txnId!)}>
            Discard
          </button>
        </span>
      )}
    </li>
  );
}

/** Reply, react, and for our own messages edit and delete: shown on hover or focus. */
function MessageActions({ session, roomId, item, mine, onDraft }: {
  session: ChatSession;
  roomId: string;
  item: Extract<TimelineItem, { kind: "message" }>;
  mine: boolean;
  onDraft: (kind: Draft["kind"]) => void;
}) {
  const [picking, setPicking] = useState(false);
  const eventId = item.event.event_id;
  const react = (key: string) => {
    setPicking(false);
    const existing = item.reactions?.find((r) => r.key === key);
    void session.toggleReaction(roomId, eventId, key, existing?.mine);
  };
  return (
    <div className="message-actions" role="toolbar" aria-label="Message actions">
      <button type="button" className="icon" aria-label="Add reaction" aria-expanded={picking} title="React" onClick={() => setPicking(!picking)}>
        <Icon name="smile" />
      </button>
      <button type="button" className="icon" aria-label="Reply" title="Reply" onClick={() => onDraft("reply")}>
        <Icon name="reply" />
      </button>
      {mine && (
        <>
          {!isMediaMessage(item) && (
            <button type="button" className="icon" aria-label="Edit message" title="Edit" onClick={() => onDraft("edit")}>
              <Icon name="edit" />
            </button>
          )}
          <button
            type="button"
            className="icon"
            aria-label="Delete message"
            title="Delete"
            onClick={() => {
              if (window.confirm("Delete this message for everyone?")) void session.deleteMessage(roomId, eventId);
            }}
          >
            <Icon name="delete" />
          </button>
        </>
      )}
      {picking && (
        <div className="reaction-picker" role="group" aria-label="Pick a reaction">
          {QUICK_REACTIONS.map((key) => (
            <button key={key} type="button" className="icon" aria-label={`React with ${key}`} onClick={() => react(key)}>
              {key}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

/** Visible and focused: the reader can see the room. */
function usePageVisible(): boolean {
  const check = () => typeof document !== "undefined" && document.visibilityState === "visible" && document.hasFocus();
  const [visible, setVisible] = useState(check);
  useEffect(() => {
    const update = () => setVisible(check());
    document.addEventListener("visibilitychange", update);
    window.addEventListener("focus", update);
    window.addEventListener("blur", update);
    return () => {
      document.removeEventListener("visibilitychange", update);
      window.removeEventListener("focus", update);
      window.removeEventListener("blur", update);
    };
  }, []);
  return visible;
}

function Composer({ session, roomId, title, draft, onDone, members, online }: {
  session: ChatSession;
  roomId: string;
  title: string;
  draft: Draft | undefined;
  onDone: () => void;
  members: Map<string, MemberRecord>;
  online: boolean;
}) {
  const [text, setText] = useState(draft?.kind === "edit" ? draft.body : "");
  const id = useId();
  const input = useRef<HTMLTextAreaElement>(null);
  const [typing] = useState(() => new TypingNotifier((on, timeoutMs) => session.setTyping(roomId, on, timeoutMs)));
  useEffect(() => () => typing.stop(), [typing]);
  useEffect(() => {
    if (draft) input.current?.focus();
  }, [draft]);
  const send = async () => {
    const message = text.trim();
    if (!message) return;
    setText("");
    typing.stop();
    // Written to the outbox (IndexedDB) first; shown as pending; sent when the network allows.
    if (draft?.kind === "edit") {
      if (message !== draft.body) await session.sendEdit(roomId, message, draft.eventId);
    } else if (draft?.kind === "reply") {
      await session.sendReply(roomId, message, draft.eventId);
    } else {
      await session.sendText(roomId, message);
    }
    if (draft) onDone();
  };
  const [attachError, setAttachError] = useState<string>();
  // Files (picked, pasted or dropped) go to the outbox with their Blob, like text: stored
  // first, shown pending with their upload's progress, uploaded and sent when online.
  const attach = (files: File[]) => {
    setAttachError(undefined);
    void (async () => {
      for (const file of files) await session.sendFile(roomId, file);
    })().catch((caught: unknown) => setAttachError(describeError(caught)));
  };
  const onPaste = (event: ClipboardEvent<HTMLTextAreaElement>) => {
    const files = [...event.clipboardData.files];
    if (files.length === 0 || draft) return;
    event.preventDefault();
    attach(files);
  };
  const onDragOver = (event: DragEvent<HTMLFormElement>) => {
    if (event.dataTransfer.types.includes("Files")) event.preventDefault();
  };
  const onDrop = (event: DragEvent<HTMLFormElement>) => {
    const files = [...event.dataTransfer.files];
    if (files.length === 0 || draft) return;
    event.preventDefault();
    attach(files);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Escape" && draft) {
      event.preventDefault();
      onDone();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    }
  };
  return (
    <form
      className="composer"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
      onDragOver={onDragOver}
      onDrop={onDrop}
    >
      {draft && (
        <p className="draft-banner">
          {draft.kind === "edit" ? "Editing your message" : `Replying to ${memberName(draft.sender, members)}`}
          <button type="button" className="link" aria-label={draft.kind === "edit" ? "Cancel editing" : "Cancel reply"} onClick={onDone}>
            Cancel
          </button>
        </p>
      )}
      <label htmlFor={`${id}-text`} className="visually-hidden">
        {draft?.kind === "edit" ? "Edit message" : `Message ${title}`}
      </label>
      <textarea
        id={`${id}-text`}
        ref={input}
        rows={1}
        value={text}
        placeholder={`Message ${title}`}
        onChange={(e) => {
          setText(e.target.value);
          typing.input(e.target.value);
        }}
        onBlur={() => typing.stop()}
        onKeyDown={onKeyDown}
        onPaste={onPaste}
      />
      {!draft && <AttachButton online={online} onFiles={attach} />}
      <button type="submit" className="primary" aria-label={draft?.kind === "edit" ? "Save edit" : "Send message"} disabled={!text.trim()}>
        {draft?.kind === "edit" ? "Save" : "Send"}
      </button>
      {attachError && (
        <p className="error" role="alert">
          Could not attach the file: {attachError}
        </p>
      )}
    </form>
  );
}
