import { useId, useState } from "react";
import { parseUserId, parseUserIds } from "../api/account";
import type { ChatSession } from "../session";
import { useAction } from "./hooks";
import { Modal } from "./Modal";

type Done = (roomId: string) => void;

export function CreateServerDialog({ session, onClose, onDone }: { session: ChatSession; onClose: () => void; onDone: Done }) {
  const [name, setName] = useState("");
  const [isPublic, setPublic] = useState(false);
  const [alias, setAlias] = useState("");
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title="Create a server"
      submitLabel="Create"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          const spaceId = await session.createServer(name.trim(), {
            isPublic,
            ...(isPublic && alias.trim() ? { alias: alias.trim() } : {}),
          });
          onDone(spaceId);
        })
      }
    >
      <p className="hint">A server is a space with channels. It starts with #general.</p>
      <label htmlFor={`${id}-name`}>Server name</label>
      <input id={`${id}-name`} required autoFocus value={name} onChange={(e) => setName(e.target.value)} />
      <label className="check">
        <input type="checkbox" checked={isPublic} onChange={(e) => setPublic(e.target.checked)} />
        Anyone with its address can join
      </label>
      {isPublic && (
        <>
          <label htmlFor={`${id}-alias`}>Address</label>
          <div className="alias">
            <span aria-hidden="true">#</span>
            <input
              id={`${id}-alias`}
              value={alias}
              pattern="[a-z0-9._=\-\/]+"
              title="Lower-case letters, digits and . _ = - /"
              onChange={(e) => setAlias(e.target.value.toLowerCase())}
              aria-describedby={`${id}-alias-server`}
            />
            <span id={`${id}-alias-server`}>:{session.serverName}</span>
          </div>
        </>
      )}
    </Modal>
  );
}

export function CreateChannelDialog({ session, spaceId, spaceName, onClose, onDone }: {
  session: ChatSession;
  spaceId: string;
  spaceName: string;
  onClose: () => void;
  onDone: Done;
}) {
  const [name, setName] = useState("");
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title={`New channel in ${spaceName}`}
      submitLabel="Create channel"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() => void run(async () => onDone(await session.createChannel(spaceId, name.trim())))}
    >
      <label htmlFor={`${id}-name`}>Channel name</label>
      <div className="alias">
        <span aria-hidden="true">#</span>
        <input
          id={`${id}-name`}
          required
          autoFocus
          value={name}
          onChange={(e) => setName(e.target.value.toLowerCase().replace(/\s+/g, "-"))}
        />
      </div>
    </Modal>
  );
}

export function JoinDialog({ session, onClose, onDone }: { session: ChatSession; onClose: () => void; onDone: Done }) {
  const [address, setAddress] = useState("");
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title="Join a server or room"
      submitLabel="Join"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() => void run(async () => onDone(await session.joinByAddress(address)))}
    >
      <label htmlFor={`${id}-address`}>Address</label>
      <input
        id={`${id}-address`}
        required
        autoFocus
        autoCapitalize="none"
        spellCheck={false}
        placeholder={`#name:${session.serverName}`}
        pattern="[#!].+"
        title="A room address (#name:server) or ID (!id:server)"
        value={address}
        onChange={(e) => setAddress(e.target.value)}
      />
    </Modal>
  );
}

export function DirectMessageDialog({ session, onClose, onDone }: { session: ChatSession; onClose: () => void; onDone: Done }) {
  const [userId, setUserId] = useState("");
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title="New direct message"
      submitLabel="Start chat"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          const target = parseUserId(userId, session.serverName);
          if (!target) throw new Error(`Enter a user ID like @name:${session.serverName}`);
          onDone(await session.startDirectChat(target));
        })
      }
    >
      <label htmlFor={`${id}-user`}>User</label>
      <input
        id={`${id}-user`}
        required
        autoFocus
        autoCapitalize="none"
        spellCheck={false}
        placeholder={`@name:${session.serverName}`}
        value={userId}
        onChange={(e) => setUserId(e.target.value)}
      />
    </Modal>
  );
}

/** A group: a named room outside any server, with the people typed invited. */
export function GroupDialog({ session, onClose, onDone }: { session: ChatSession; onClose: () => void; onDone: Done }) {
  const [name, setName] = useState("");
  const [people, setPeople] = useState("");
  const { busy, error, run } = useAction();
  const id = useId();
  return (
    <Modal
      title="New group"
      submitLabel="Create group"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          const { userIds, invalid } = parseUserIds(people, session.serverName);
          if (invalid.length > 0) {
            throw new Error(`Not a user ID: ${invalid.join(", ")} (write them like @name:${session.serverName})`);
          }
          onDone(await session.createGroup(name.trim(), userIds));
        })
      }
    >
      <label htmlFor={`${id}-name`}>Group name</label>
      <input id={`${id}-name`} required autoFocus maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      <label htmlFor={`${id}-people`}>People to invite</label>
      <input
        id={`${id}-people`}
        autoCapitalize="none"
        spellCheck={false}
        aria-describedby={`${id}-people-hint`}
        placeholder={`@alice:${session.serverName}, @bob:${session.serverName}`}
        value={people}
        onChange={(e) => setPeople(e.target.value)}
      />
      <p className="hint" id={`${id}-people-hint`}>
        User IDs separated by commas or spaces; you can invite more later.
      </p>
    </Modal>
  );
}
