import { useId, useState } from "react";
import { describeApiError, inviteUser, parseUserId } from "../api/account";
import type { ChatSession } from "../session";
import { useAction } from "./hooks";
import { Modal } from "./Modal";

/** Invites a user by Matrix ID to a server (the space) or to a channel / group room. Stays open
 *  after an invite, so that several people can be invited in a row. */
export function InviteDialog({ session, roomId, name, isServer, onClose }: {
  session: ChatSession;
  roomId: string;
  name: string;
  /** A server: the invite is to its space; the channels are joined after accepting. */
  isServer: boolean;
  onClose: () => void;
}) {
  const [input, setInput] = useState("");
  const [invalid, setInvalid] = useState(false);
  const [invited, setInvited] = useState<string[]>([]);
  const { busy, error, run } = useAction();
  const id = useId();
  const server = session.serverName;
  return (
    <Modal
      title={isServer ? `Invite people to ${name}` : `Invite people to #${name}`}
      submitLabel="Invite"
      busy={busy}
      error={error}
      onClose={onClose}
      onSubmit={() =>
        void run(async () => {
          const userId = parseUserId(input, server);
          setInvalid(userId === undefined);
          if (!userId) throw new Error(`Enter a user ID like @name:${server}`);
          try {
            await inviteUser(session.api, roomId, userId);
          } catch (caught) {
            throw new Error(describeApiError(caught));
          }
          setInvited((done) => [...done.filter((u) => u !== userId), userId]);
          setInput("");
        })
      }
    >
      <p className="hint" id={`${id}-hint`}>
        {isServer
          ? "They are invited to the server; once they accept, they can join its channels."
          : "They are invited to this channel only."}
      </p>
      <label htmlFor={`${id}-user`}>User ID</label>
      <input
        id={`${id}-user`}
        required
        autoFocus
        autoCapitalize="none"
        autoComplete="off"
        spellCheck={false}
        placeholder={`@name:${server}`}
        aria-describedby={`${id}-hint`}
        aria-invalid={invalid || undefined}
        value={input}
        onChange={(e) => {
          setInput(e.target.value);
          setInvalid(false);
        }}
      />
      {invited.length > 0 && (
        <p className="notice" role="status">
          Invited {invited.join(", ")}.
        </p>
      )}
    </Modal>
  );
}
