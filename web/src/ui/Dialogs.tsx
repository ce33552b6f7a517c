import { useId, useState } from "react";
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
          const target = userId.trim().includes(":") ? userId.trim() : `@${userId.trim().replace(/^@/, "")}:${session.serverName}`;
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
