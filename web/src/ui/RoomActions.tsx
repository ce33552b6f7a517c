import { useId, useState } from "react";
import { MatrixApiError } from "../api/client";
import { describeApiError } from "../api/account";
import type { ChatSession } from "../session";
import type { RoomRecord } from "../store/schema";
import { useAction } from "./hooks";
import { Modal } from "./Modal";

/** What is renamed or left: a server (its space), a channel, a group room or a DM. */
export type RoomKind = "server" | "channel" | "room" | "conversation";

/** The error of a rename or a leave, in words (a missing power level says so). */
export function describeRoomActionError(error: unknown, action: "rename" | "leave", kind: RoomKind): string {
  if (error instanceof MatrixApiError && error.errcode === "M_FORBIDDEN") {
    return `You are not allowed to ${action} this ${kind}: ${error.message} (M_FORBIDDEN)`;
  }
  return describeApiError(error);
}

/** Sets a room's or server's name (`m.room.name`); the list shows it once /sync brings it. */
export function RenameDialog({ session, roomId, kind, current, onClose }: {
  session: ChatSession;
  roomId: string;
  kind: RoomKind;
  /** The name shown now, to start from. */
  current: string;
  onClose: () => void;
}) {
  const [name, setName] = useState(current);
  const { busy, error, run } = useAction();
  const id = useId();
  const isChannel = kind === "channel";
  return (
    <Modal
      title={isChannel ? `Rename #${current}` : `Rename ${current}`}
      submitLabel="Rename"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          try {
            await session.renameRoom(roomId, name.trim());
          } catch (caught) {
            throw new Error(describeRoomActionError(caught, "rename", kind));
          }
          onClose();
        })
      }
    >
      <label htmlFor={`${id}-name`}>{kind === "server" ? "Server name" : isChannel ? "Channel name" : "Room name"}</label>
      <div className="alias">
        {isChannel && <span aria-hidden="true">#</span>}
        <input
          id={`${id}-name`}
          required
          autoFocus
          pattern=".*\S.*"
          title="A name that is not only spaces"
          value={name}
          onChange={(e) => setName(isChannel ? e.target.value.toLowerCase().replace(/\s+/g, "-") : e.target.value)}
        />
      </div>
    </Modal>
  );
}

/** Confirms leaving a channel, group room or DM. */
export function LeaveRoomDialog({ session, roomId, kind, title, onClose, onDone }: {
  session: ChatSession;
  roomId: string;
  kind: Exclude<RoomKind, "server">;
  /** As the header shows it ("#general", "Bob"). */
  title: string;
  onClose: () => void;
  onDone: () => void;
}) {
  const { busy, error, run } = useAction();
  return (
    <Modal
      title={kind === "conversation" ? `Leave the conversation with ${title}?` : `Leave ${title}?`}
      submitLabel="Leave"
      danger
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          try {
            await session.leaveRoom(roomId);
          } catch (caught) {
            throw new Error(describeRoomActionError(caught, "leave", kind));
          }
          onDone();
        })
      }
    >
      <p className="hint">
        {kind === "conversation"
          ? "Its messages disappear from your list. They would have to invite you again."
          : "It disappears from your list. To come back you need its address or a new invite."}
      </p>
    </Modal>
  );
}

/** Confirms leaving a server: its space, and (unless unticked) the channels of it we are in. */
export function LeaveServerDialog({ session, space, name, channels, onClose, onDone }: {
  session: ChatSession;
  space: RoomRecord;
  name: string;
  /** From channelsToLeave: the joined channels of this server only. */
  channels: RoomRecord[];
  onClose: () => void;
  onDone: () => void;
}) {
  const [withChannels, setWithChannels] = useState(true);
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title={`Leave ${name}?`}
      submitLabel="Leave server"
      danger
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          try {
            await session.leaveServer(space.roomId, withChannels ? channels.map((c) => c.roomId) : []);
          } catch (caught) {
            throw new Error(describeRoomActionError(caught, "leave", "server"));
          }
          onDone();
        })
      }
    >
      <p className="hint">You leave the server; to come back you need its address or a new invite.</p>
      {channels.length > 0 && (
        <>
          <label className="check">
            <input type="checkbox" checked={withChannels} aria-describedby={`${id}-channels`} onChange={(e) => setWithChannels(e.target.checked)} />
            Also leave its {channels.length === 1 ? "channel" : `${channels.length} channels`} you are in
          </label>
          <p className="hint" id={`${id}-channels`}>
            {channels.map((c) => `#${c.name ?? c.roomId}`).join(", ")}
          </p>
        </>
      )}
    </Modal>
  );
}
