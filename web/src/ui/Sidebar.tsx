import { useEffect, useState, type KeyboardEvent, type ReactNode } from "react";
import type { ChatSession, SpaceChildInfo } from "../session";
import type { MemberRecord, RoomRecord } from "../store/schema";
import { NotificationSetting } from "./NotificationSetting";
import { FRIENDS, HOME, channelsOf, roomName, unreadOf, type Sidebar, type Unread } from "./model";
import { Icon } from "./Icon";

/** A count of unread notifications; red when some mention us. Hidden from screen readers: the
 *  control's label says it in words. */
function Badge({ unread }: { unread: Unread | undefined }) {
  if (!unread || unread.count === 0) return null;
  return (
    <span className={`badge${unread.highlight > 0 ? " highlight" : ""}`} aria-hidden="true">
      {unread.count > 99 ? "99+" : unread.count}
    </span>
  );
}

function unreadLabel(unread: Unread | undefined): string {
  if (!unread || unread.count === 0) return "";
  const mentions = unread.highlight > 0 ? `, ${unread.highlight} mentioning you` : "";
  return ` (${unread.count} unread${mentions})`;
}

/** Arrow keys move between the buttons of a list; Tab leaves it. */
function arrowKeys(event: KeyboardEvent<HTMLElement>) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const buttons = [...event.currentTarget.querySelectorAll<HTMLButtonElement>("button:not([disabled])")];
  const index = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (index < 0) return;
  event.preventDefault();
  const next = buttons[(index + (event.key === "ArrowDown" ? 1 : buttons.length - 1)) % buttons.length];
  next?.focus();
}

function initials(name: string): string {
  const words = name.replace(/^[#!@]/, "").split(/\s+/).filter(Boolean);
  return (words.length > 1 ? (words[0]![0] ?? "") + (words[1]![0] ?? "") : name.replace(/^[#!@]/, "").slice(0, 2)).toUpperCase();
}

export function ServerRail({ sidebar, selected, onSelect, onCreate, onJoin, me, unread }: {
  sidebar: Sidebar;
  /** By space ID, and HOME for Home. */
  unread: Map<string, Unread>;
  selected: string;
  me: string;
  onSelect: (spaceId: string) => void;
  onCreate: () => void;
  onJoin: () => void;
}) {
  return (
    <ul className="rail" aria-label="Servers" onKeyDown={arrowKeys}>
      <li>
        <button
          type="button"
          className="rail-item home"
          aria-current={selected === HOME ? "page" : undefined}
          aria-label={`Home: direct messages and rooms${unreadLabel(unread.get(HOME))}`}
          title="Home"
          onClick={() => onSelect(HOME)}
        >
          <Icon name="home" />
          <Badge unread={unread.get(HOME)} />
        </button>
      </li>
      <li role="separator" className="rail-separator" />
      {sidebar.spaces.map((space) => {
        const name = roomName(space, me);
        return (
          <li key={space.roomId}>
            <button
              type="button"
              className="rail-item"
              aria-current={selected === space.roomId ? "page" : undefined}
              aria-label={`${name}${unreadLabel(unread.get(space.roomId))}`}
              title={name}
              onClick={() => onSelect(space.roomId)}
            >
              <span aria-hidden="true">{initials(name)}</span>
              <Badge unread={unread.get(space.roomId)} />
            </button>
          </li>
        );
      })}
      <li>
        <button type="button" className="rail-item action" aria-label="Create a server" title="Create a server" onClick={onCreate}>
          <span aria-hidden="true">+</span>
        </button>
      </li>
      <li>
        <button type="button" className="rail-item action" aria-label="Join a server or room" title="Join by address" onClick={onJoin}>
          <Icon name="join" />
        </button>
      </li>
    </ul>
  );
}

interface ChannelListProps {
  session: ChatSession;
  sidebar: Sidebar;
  rooms: RoomRecord[];
  directs: Map<string, string>;
  members: Map<string, MemberRecord>;
  space: RoomRecord | undefined;
  selectedRoom: string | undefined;
  online: boolean;
  onSelectRoom: (roomId: string) => void;
  /** A channel joined from the list of those we are not in: open it once /sync has it. */
  onJoinedChannel: (roomId: string) => void;
  onCreateChannel: () => void;
  onNewDirect: () => void;
  onNewGroup: () => void;
  /** Invite people to the open server (its space). */
  onInvite: () => void;
  onRenameServer: () => void;
  onLeaveServer: () => void;
  /** Pending DM invites, counted on the Friends entry. */
  friendRequests: number;
  onSettings: () => void;
  onLogOut: () => void;
}

export function ChannelList(props: ChannelListProps) {
  const { session, sidebar, rooms, directs, members, space, selectedRoom, onSelectRoom } = props;
  const me = session.session.userId;
  const entry = (room: RoomRecord, prefix: ReactNode) => {
    const name = roomName(room, me, members, directs.get(room.roomId));
    const unread = unreadOf([room]);
    return (
      <li key={room.roomId}>
        <button
          type="button"
          className={`channel${unread.count > 0 ? " unread" : ""}`}
          aria-current={selectedRoom === room.roomId ? "page" : undefined}
          aria-label={`${name}${unreadLabel(unread)}`}
          onClick={() => onSelectRoom(room.roomId)}
        >
          <span className="channel-prefix" aria-hidden="true">
            {prefix}
          </span>
          {name}
          <Badge unread={unread} />
        </button>
      </li>
    );
  };

  return (
    <div className="channels">
      <header className="channels-header">
        <h2>{space ? roomName(space, me) : "Home"}</h2>
        {space && (
          <span className="header-actions">
            <button type="button" className="text-action" aria-label="Invite people" title="Invite people to this server" onClick={props.onInvite}>
              Invite
            </button>
            <button type="button" className="icon" aria-label="Rename server" title="Rename this server" onClick={props.onRenameServer}>
              <Icon name="edit" />
            </button>
            <button type="button" className="icon" aria-label="Leave server" title="Leave this server" onClick={props.onLeaveServer}>
              <Icon name="leave" />
            </button>
            <button type="button" className="icon" aria-label="Create a channel" title="Create a channel" onClick={props.onCreateChannel}>
              +
            </button>
          </span>
        )}
      </header>
      <nav className="channel-scroll" aria-label={space ? `Channels of ${roomName(space, me)}` : "Home"} onKeyDown={arrowKeys}>
        {space ? (
          <>
            <ul>{channelsOf(space, rooms).map((room) => entry(room, "#"))}</ul>
            <UnjoinedChannels session={session} space={space} rooms={rooms} online={props.online} onJoined={props.onJoinedChannel} />
          </>
        ) : (
          <>
            <ul>
              <li>
                <button
                  type="button"
                  className={`channel${props.friendRequests > 0 ? " unread" : ""}`}
                  aria-current={selectedRoom === FRIENDS ? "page" : undefined}
                  aria-label={`Friends${props.friendRequests > 0 ? ` (${props.friendRequests} ${props.friendRequests === 1 ? "request" : "requests"})` : ""}`}
                  onClick={() => onSelectRoom(FRIENDS)}
                >
                  <span className="channel-prefix" aria-hidden="true">
                    <Icon name="smile" />
                  </span>
                  Friends
                  <Badge unread={{ count: props.friendRequests, highlight: props.friendRequests }} />
                </button>
              </li>
            </ul>
            {sidebar.invites.length > 0 && (
              <section aria-label="Invites">
                <h3>Invites</h3>
                <ul>{sidebar.invites.map((room) => entry(room, <Icon name="mail" />))}</ul>
              </section>
            )}
            <section aria-label="Direct messages">
              <h3>
                Direct messages
                <button type="button" className="icon" aria-label="New direct message" title="New direct message" onClick={props.onNewDirect}>
                  +
                </button>
              </h3>
              <ul>{sidebar.directs.map((room) => entry(room, "@"))}</ul>
            </section>
            <section aria-label="Groups">
              <h3>
                Groups
                <button type="button" className="icon" aria-label="New group" title="New group" onClick={props.onNewGroup}>
                  +
                </button>
              </h3>
              <ul>{sidebar.homeRooms.map((room) => entry(room, "#"))}</ul>
            </section>
          </>
        )}
      </nav>
      <NotificationSetting session={session} online={props.online} />
      <footer className="me">
        <span className="me-name" title={me}>
          {me}
        </span>
        <button type="button" aria-label="Account settings" title="Account settings" onClick={props.onSettings}>
          Settings
        </button>
        <button type="button" onClick={props.onLogOut}>
          Log out
        </button>
      </footer>
    </div>
  );
}

/** Channels the space lists that we are not in (asked of the server, so only when online). */
function UnjoinedChannels({ session, space, rooms, online, onJoined }: {
  session: ChatSession;
  space: RoomRecord;
  rooms: RoomRecord[];
  online: boolean;
  onJoined: (roomId: string) => void;
}) {
  const [children, setChildren] = useState<SpaceChildInfo[]>([]);
  const [joining, setJoining] = useState<string>();
  const childCount = Object.keys(space.children).length;
  useEffect(() => {
    if (!online) return;
    let live = true;
    session
      .spaceChildren(space.roomId)
      .then((found) => live && setChildren(found))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [session, space.roomId, childCount, online]);
  const joined = new Set(rooms.filter((r) => r.membership === "join").map((r) => r.roomId));
  const missing = children.filter((c) => !joined.has(c.room.room_id) && c.room.room_type !== "m.space");
  if (missing.length === 0) return null;
  return (
    <section aria-label="Channels you have not joined">
      <h3>More channels</h3>
      <ul>
        {missing.map(({ room, via }) => (
          <li key={room.room_id}>
            <button
              type="button"
              className="channel unjoined"
              disabled={joining === room.room_id}
              onClick={() => {
                setJoining(room.room_id);
                void session
                  .joinRoom(room.room_id, via)
                  .then(() => onJoined(room.room_id))
                  .catch(() => undefined) // still listed: the user may try again
                  .finally(() => setJoining(undefined));
              }}
            >
              <span className="channel-prefix" aria-hidden="true">
                #
              </span>
              {room.name ?? room.canonical_alias ?? room.room_id}
              <span className="join-label">Join</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
