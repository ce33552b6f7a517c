import { useEffect, useRef, useState } from "react";
import type { ChatSession } from "../session";
import type { MemberRecord } from "../store/schema";
import { CreateChannelDialog, CreateServerDialog, DirectMessageDialog, GroupDialog, JoinDialog } from "./Dialogs";
import { FriendsView } from "./Friends";
import { InviteDialog } from "./InviteDialog";
import { LeaveRoomDialog, LeaveServerDialog, RenameDialog } from "./RoomActions";
import { SettingsDialog } from "./SettingsDialog";
import { useBrowserOnline, useMediaQuery, useStoreData, useSyncStatus } from "./hooks";
import {
  FRIENDS,
  HOME,
  channelsOf,
  channelsToLeave,
  directRoomIds,
  friendsOf,
  isDirectInvite,
  isSpace,
  railUnread,
  roomName,
  spaceOfRoom,
  sidebar as buildSidebar,
} from "./model";
import { roomFromHash } from "./route";
import { RoomView } from "./RoomView";
import { ChannelList, ServerRail } from "./Sidebar";
import { StatusIndicator } from "./StatusIndicator";
import { Icon, type IconName } from "./Icon";

type DialogKind =
  | "createServer"
  | "createChannel"
  | "join"
  | "direct"
  | "group"
  | "inviteServer"
  | "inviteRoom"
  | "settings"
  | "renameServer"
  | "renameRoom"
  | "leaveServer"
  | "leaveRoom";

const remembered = (key: string) => {
  try {
    return localStorage.getItem(key) ?? undefined;
  } catch {
    return undefined;
  }
};
const remember = (key: string, value: string) => {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode: the selection is simply not kept
  }
};

/** The signed-in app: rail of servers, channel list, and the open room. Renders from the store,
 *  so with no network it shows what was stored the last time. */
export function ChatShell({ session, onLoggedOut }: { session: ChatSession; onLoggedOut: () => void }) {
  const store = session.store;
  const me = session.session.userId;
  const narrow = useMediaQuery("(max-width: 700px)");
  const status = useSyncStatus(session);
  const browserOnline = useBrowserOnline();
  const [space, setSpace] = useState(() => remembered("web.space") ?? HOME);
  const [roomId, setRoomId] = useState(() => remembered("web.room"));
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [dialog, setDialog] = useState<DialogKind>();
  // A room or space just created or joined: opened as soon as /sync has brought it.
  const [wanted, setWanted] = useState<string>();
  const locate = useRef<string>(undefined);

  const data = useStoreData(
    store,
    async () => {
      const [rooms, direct, outbox] = await Promise.all([
        store.listRooms(),
        store.getAccountData("m.direct"),
        store.listOutbox(),
      ]);
      const directs = directRoomIds(direct?.content);
      // Names of DM partners, for the list (only the rooms that need them).
      const members = new Map<string, MemberRecord>();
      for (const [dmRoom, userId] of directs) {
        const found = (await store.getMembers(dmRoom)).find((m) => m.userId === userId);
        if (found) members.set(userId, found);
      }
      // And of who sent a friend request (the invite's stripped state has their member event).
      for (const invite of rooms.filter((r) => r.inviter && isDirectInvite(r, directs))) {
        const found = (await store.getMembers(invite.roomId)).find((m) => m.userId === invite.inviter);
        if (found && !members.has(found.userId)) members.set(found.userId, found);
      }
      return { rooms, directs, members, pending: outbox.filter((e) => e.status === "pending").length };
    },
    [],
  );

  const rooms = data?.rooms ?? [];
  const directs = data?.directs ?? new Map<string, string>();
  const side = buildSidebar(rooms, directs);
  const friends = friendsOf(rooms, directs, me);
  const showFriends = space === HOME && roomId === FRIENDS;
  const spaceRecord = space === HOME ? undefined : rooms.find((r) => r.roomId === space && isSpace(r));
  // A space we are invited to opens like a room: its banner is where the invite is accepted.
  const room = rooms.find((r) => r.roomId === roomId && (!isSpace(r) || r.membership === "invite"));

  // A space we left, or a room that went away: fall back to something that exists.
  useEffect(() => {
    if (!data) return;
    if (space !== HOME && !spaceRecord) setSpace(HOME);
  }, [data, space, spaceRecord]);

  useEffect(() => {
    if (!wanted) return;
    const target = rooms.find((r) => r.roomId === wanted && r.membership === "join");
    if (!target) return;
    if (isSpace(target)) {
      setSpace(target.roomId);
      // Its channels may come in a later /sync than the space itself: keep waiting for one.
      const first = channelsOf(target, rooms)[0];
      if (!first) return;
      setRoomId(first.roomId);
    } else {
      // Opened from outside (a notification): show it among its space's channels.
      if (locate.current === target.roomId) setSpace(spaceOfRoom(target.roomId, rooms));
      setRoomId(target.roomId);
    }
    locate.current = undefined;
    setWanted(undefined);
  }, [wanted, rooms]);

  // A room asked for by the address (/#/room/!id, as a notification opens the app) or by the
  // service worker when a notification is clicked while the app is open.
  useEffect(() => {
    const fromHash = () => {
      const target = roomFromHash(window.location.hash);
      if (!target) return;
      history.replaceState(null, "", window.location.pathname + window.location.search);
      setDrawerOpen(false);
      locate.current = target;
      setWanted(target);
    };
    const fromWorker = (event: MessageEvent) => {
      const message = event.data as { type?: unknown; roomId?: unknown } | null;
      if (message?.type !== "open-room" || typeof message.roomId !== "string") return;
      setDrawerOpen(false);
      locate.current = message.roomId;
      setWanted(message.roomId);
    };
    fromHash();
    window.addEventListener("hashchange", fromHash);
    navigator.serviceWorker?.addEventListener("message", fromWorker);
    return () => {
      window.removeEventListener("hashchange", fromHash);
      navigator.serviceWorker?.removeEventListener("message", fromWorker);
    };
  }, []);

  useEffect(() => remember("web.space", space), [space]);
  useEffect(() => {
    if (roomId) remember("web.room", roomId);
  }, [roomId]);

  const selectSpace = (id: string) => {
    setWanted(undefined);
    setSpace(id);
    const target = id === HOME ? undefined : rooms.find((r) => r.roomId === id);
    const first = target ? channelsOf(target, rooms)[0] : side.directs[0] ?? side.homeRooms[0];
    setRoomId(first?.roomId);
  };
  const selectRoom = (id: string) => {
    setWanted(undefined);
    setRoomId(id);
    setDrawerOpen(false);
  };
  const opened = (id: string, home = false) => {
    setDialog(undefined);
    if (home) setSpace(HOME);
    setWanted(id);
    setDrawerOpen(false);
  };

  const dmUser = room ? directs.get(room.roomId) : undefined;
  const title = room ? (dmUser ? "" : "#") + roomName(room, me, data?.members, dmUser) : "";
  // Channels and group rooms take invites from here; a DM's is its one other person.
  const invitable = room && !dmUser && room.membership === "join" ? room : undefined;
  const roomKind = dmUser
    ? "conversation"
    : room && (spaceRecord || spaceOfRoom(room.roomId, rooms) !== HOME)
      ? "channel"
      : "room";
  const joinedRoom = room && room.membership === "join" ? room : undefined;
  // After leaving: Home, with nothing open (the left rooms go from the store with /sync).
  const leftToHome = () => {
    setDialog(undefined);
    setWanted(undefined);
    setSpace(HOME);
    setRoomId(undefined);
  };
  // After leaving a channel: stay in its server, on another of its channels if we are in one
  // (the one left is listed again under the channels we have not joined).
  const leftRoom = (leftId: string) => {
    if (!spaceRecord) return leftToHome();
    setDialog(undefined);
    setWanted(undefined);
    setRoomId(channelsOf(spaceRecord, rooms).find((c) => c.roomId !== leftId)?.roomId);
  };

  const logOut = async () => {
    await session.logOut();
    onLoggedOut();
  };

  // Focus follows the drawer: into it when it opens, back to the menu button when it closes.
  const drawerRef = useRef<HTMLDivElement>(null);
  const menuRef = useRef<HTMLButtonElement>(null);
  const wasOpen = useRef(false);
  useEffect(() => {
    if (!narrow) return;
    if (drawerOpen) {
      const target =
        drawerRef.current?.querySelector<HTMLElement>(".channel[aria-current='page']") ??
        drawerRef.current?.querySelector<HTMLElement>("button");
      target?.focus();
    } else if (wasOpen.current) {
      menuRef.current?.focus();
    }
    wasOpen.current = drawerOpen;
  }, [drawerOpen, narrow]);

  const drawerHidden = narrow && !drawerOpen;
  return (
    <div className={`shell${narrow ? " narrow" : ""}${drawerOpen ? " drawer-open" : ""}`}>
      <div
        className="drawer"
        id="drawer"
        ref={drawerRef}
        inert={drawerHidden}
        aria-hidden={drawerHidden || undefined}
        onKeyDown={(e) => {
          if (e.key === "Escape" && narrow) setDrawerOpen(false);
        }}
      >
        <ServerRail
          sidebar={side}
          unread={railUnread(side, rooms)}
          selected={space}
          me={me}
          onSelect={selectSpace}
          onCreate={() => setDialog("createServer")}
          onJoin={() => setDialog("join")}
        />
        <ChannelList
          session={session}
          sidebar={side}
          rooms={rooms}
          directs={directs}
          members={data?.members ?? new Map()}
          space={spaceRecord}
          selectedRoom={roomId}
          online={status === "online" && browserOnline}
          onSelectRoom={selectRoom}
          onCreateChannel={() => setDialog("createChannel")}
          onNewDirect={() => setDialog("direct")}
          onNewGroup={() => setDialog("group")}
          onJoinedChannel={(id) => opened(id)}
          onInvite={() => setDialog("inviteServer")}
          onRenameServer={() => setDialog("renameServer")}
          onLeaveServer={() => setDialog("leaveServer")}
          friendRequests={friends.requests.length}
          onSettings={() => setDialog("settings")}
          onLogOut={() => void logOut()}
        />
      </div>
      {narrow && drawerOpen && <div className="scrim" aria-hidden="true" onClick={() => setDrawerOpen(false)} />}
      <main className="chat" inert={narrow && drawerOpen}>
        <header className="chat-header">
          {narrow && (
            <button
              ref={menuRef}
              type="button"
              className="icon menu"
              aria-label="Open servers and channels"
              aria-expanded={drawerOpen}
              aria-controls="drawer"
              onClick={() => setDrawerOpen(true)}
            >
              <Icon name="menu" />
            </button>
          )}
          <h1 className="chat-title">{room ? title : showFriends ? "Friends" : "Chat"}</h1>
          {invitable && (
            <HeaderAction icon="invite" text="Invite" label="Invite people to this room" onClick={() => setDialog("inviteRoom")} />
          )}
          {joinedRoom && !dmUser && (
            <HeaderAction icon="edit" text="Rename" label={`Rename this ${roomKind}`} onClick={() => setDialog("renameRoom")} />
          )}
          {joinedRoom && (
            <HeaderAction icon="leave" text="Leave" label={`Leave this ${roomKind}`} onClick={() => setDialog("leaveRoom")} />
          )}
          <StatusIndicator status={status} browserOnline={browserOnline} pending={data?.pending ?? 0} />
        </header>
        {room ? (
          <RoomView key={room.roomId} session={session} room={room} title={title} online={status === "online" && browserOnline} />
        ) : showFriends ? (
          <FriendsView
            session={session}
            friends={friends}
            members={data?.members ?? new Map()}
            onOpen={(id) => opened(id, true)}
            onAdd={() => setDialog("direct")}
          />
        ) : (
          <div className="empty">
            {data === undefined ? (
              <p role="status">Loading…</p>
            ) : rooms.length === 0 && status !== "online" ? (
              <p role="status">Waiting for the first sync…</p>
            ) : (
              <p>Pick a channel or a conversation{narrow ? " from the menu" : ""}, or create a server with +.</p>
            )}
          </div>
        )}
      </main>
      {dialog === "createServer" && (
        <CreateServerDialog session={session} onClose={() => setDialog(undefined)} onDone={(spaceId) => opened(spaceId)} />
      )}
      {dialog === "createChannel" && spaceRecord && (
        <CreateChannelDialog
          session={session}
          spaceId={spaceRecord.roomId}
          spaceName={roomName(spaceRecord, me)}
          onClose={() => setDialog(undefined)}
          onDone={(id) => opened(id)}
        />
      )}
      {dialog === "join" && (
        <JoinDialog
          session={session}
          onClose={() => setDialog(undefined)}
          onDone={(id) => opened(id)}
        />
      )}
      {dialog === "direct" && (
        <DirectMessageDialog session={session} onClose={() => setDialog(undefined)} onDone={(id) => opened(id, true)} />
      )}
      {dialog === "group" && (
        <GroupDialog session={session} onClose={() => setDialog(undefined)} onDone={(id) => opened(id, true)} />
      )}
      {dialog === "inviteServer" && spaceRecord && (
        <InviteDialog
          session={session}
          roomId={spaceRecord.roomId}
          name={roomName(spaceRecord, me)}
          isServer
          onClose={() => setDialog(undefined)}
        />
      )}
      {dialog === "inviteRoom" && invitable && (
        <InviteDialog
          session={session}
          roomId={invitable.roomId}
          name={roomName(invitable, me, data?.members)}
          isServer={false}
          onClose={() => setDialog(undefined)}
        />
      )}
      {dialog === "settings" && <SettingsDialog session={session} onClose={() => setDialog(undefined)} />}
      {dialog === "renameServer" && spaceRecord && (
        <RenameDialog
          session={session}
          roomId={spaceRecord.roomId}
          kind="server"
          current={roomName(spaceRecord, me)}
          onClose={() => setDialog(undefined)}
        />
      )}
      {dialog === "renameRoom" && joinedRoom && !dmUser && (
        <RenameDialog
          session={session}
          roomId={joinedRoom.roomId}
          kind={roomKind}
          current={roomName(joinedRoom, me, data?.members)}
          onClose={() => setDialog(undefined)}
        />
      )}
      {dialog === "leaveServer" && spaceRecord && (
        <LeaveServerDialog
          session={session}
          space={spaceRecord}
          name={roomName(spaceRecord, me)}
          channels={channelsToLeave(spaceRecord, rooms)}
          onClose={() => setDialog(undefined)}
          onDone={leftToHome}
        />
      )}
      {dialog === "leaveRoom" && joinedRoom && (
        <LeaveRoomDialog
          session={session}
          roomId={joinedRoom.roomId}
          kind={roomKind}
          title={title}
          onClose={() => setDialog(undefined)}
          onDone={() => leftRoom(joinedRoom.roomId)}
        />
      )}
    </div>
  );
}

/** A room header button: its word on wide screens, its icon on phones; the label always. */
function HeaderAction({ icon, text, label, onClick }: { icon: IconName; text: string; label: string; onClick: () => void }) {
  return (
    <button type="button" className="text-action" aria-label={label} title={label} onClick={onClick}>
      <Icon name={icon} />
      <span className="action-text">{text}</span>
    </button>
  );
}
