import { useCallback, useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import type { RoomEvent } from "../api/types";
import { describeError, type ChatSession } from "../session";
import type { MemberRecord, RoomRecord } from "../store/schema";
import { useStoreData } from "./hooks";
import { backToken, memberName, reachedStart, timeLabel, timelineItems, type TimelineItem } from "./model";

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
        />
      ) : (
        <div className="timeline" aria-busy="true" />
      )}
      <Composer session={session} roomId={roomId} title={title} />
    </div>
  );
}

function InviteBanner({ session, room, title }: Props) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const act = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
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
}

function Timeline({ session, roomId, title, me, stored, outbox, members, online }: TimelineProps) {
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

  const onScroll = () => {
    const element = scroller.current;
    if (!element) return;
    atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
    if (element.scrollTop < 120) void loadOlder();
  };

  return (
    <div className="timeline" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label={`Messages in ${title}`}>
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
          <TimelineRow key={item.key} item={item} session={session} members={members} online={online} />
        ))}
      </ol>
    </div>
  );
}

function TimelineRow({ item, session, members, online }: {
  item: TimelineItem;
  session: ChatSession;
  members: Map<string, MemberRecord>;
  online: boolean;
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
  const body = typeof event.content["body"] === "string" ? event.content["body"] : "";
  const emote = event.content["msgtype"] === "m.emote";
  const time = timeLabel(event.origin_server_ts);
  const classes = ["message", item.continued ? "continued" : "", item.pending ? `is-${item.pending}` : ""];
  return (
    <li className={classes.join(" ")}>
      {!item.continued && (
        <div className="message-head">
          <span className="avatar" aria-hidden="true">
            {name.slice(0, 1).toUpperCase()}
          </span>
          <span className="sender">{name}</span>
          <time dateTime={new Date(event.origin_server_ts).toISOString()}>{time}</time>
        </div>
      )}
      <div className="body">
        {item.continued && <span className="visually-hidden">{name}, {time}: </span>}
        {emote ? <em>* {name} {body}</em> : body}
      </div>
      {item.pending === "pending" && (
        <span className="pending-label">{online ? "Sending…" : "Waiting for the network…"}</span>
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

function Composer({ session, roomId, title }: { session: ChatSession; roomId: string; title: string }) {
  const [text, setText] = useState("");
  const id = useId();
  const send = async () => {
    const message = text.trim();
    if (!message) return;
    setText("");
    // Written to the outbox (IndexedDB) first; shown as pending; sent when the network allows.
    await session.sendText(roomId, message);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
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
    >
      <label htmlFor={`${id}-text`} className="visually-hidden">
        Message {title}
      </label>
      <textarea
        id={`${id}-text`}
        rows={1}
        value={text}
        placeholder={`Message ${title}`}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <button type="submit" className="primary" aria-label="Send message" disabled={!text.trim()}>
        Send
      </button>
    </form>
  );
}
