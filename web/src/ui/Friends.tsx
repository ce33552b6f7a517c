import type { ChatSession } from "../session";
import type { MemberRecord, RoomRecord } from "../store/schema";
import { useAction } from "./hooks";
import { localpart, memberName, type FriendRequest, type Friends } from "./model";

/** Home's Friends view: DM invites as friend requests, and the people we have a DM with. */
export function FriendsView({ session, friends, members, onOpen, onAdd }: {
  session: ChatSession;
  friends: Friends;
  /** Display names of the people listed, where known. */
  members: Map<string, MemberRecord>;
  /** Opens a DM (once /sync has it as joined). */
  onOpen: (roomId: string) => void;
  onAdd: () => void;
}) {
  return (
    <div className="friends">
      <div className="friends-actions">
        <button type="button" className="primary" onClick={onAdd}>
          Add friend
        </button>
      </div>
      {friends.requests.length > 0 && (
        <section aria-label="Friend requests">
          <h2>Friend requests — {friends.requests.length}</h2>
          <ul>
            {friends.requests.map((request) => (
              <Request key={request.room.roomId} session={session} request={request} members={members} onOpen={onOpen} />
            ))}
          </ul>
        </section>
      )}
      <section aria-label="Friends">
        <h2>Friends — {friends.friends.length}</h2>
        {friends.friends.length === 0 ? (
          <p className="hint">No friends yet. Start a direct message with someone, or accept a request.</p>
        ) : (
          <ul>
            {friends.friends.map((friend) => {
              const name = memberName(friend.userId, members);
              return (
                <li key={friend.userId} className="friend">
                  <span className="friend-name">
                    {name}
                    <span className="friend-id">{friend.userId}</span>
                  </span>
                  <button type="button" aria-label={`Message ${name}`} onClick={() => onOpen(friend.roomId)}>
                    Message
                  </button>
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </div>
  );
}

function Request({ session, request, members, onOpen }: {
  session: ChatSession;
  request: FriendRequest;
  members: Map<string, MemberRecord>;
  onOpen: (roomId: string) => void;
}) {
  const { busy, error, run } = useAction();
  const room: RoomRecord = request.room;
  const name = request.userId ? memberName(request.userId, members) : localpart(room.roomId);
  return (
    <li className="friend">
      <span className="friend-name">
        {name}
        {request.userId && <span className="friend-id">{request.userId}</span>}
      </span>
      <span className="friend-buttons">
        <button type="button" disabled={busy} aria-label={`Decline the request from ${name}`} onClick={() => void run(() => session.leaveRoom(room.roomId))}>
          Decline
        </button>
        <button
          type="button"
          className="primary"
          disabled={busy}
          aria-label={`Accept the request from ${name}`}
          onClick={() =>
            void run(async () => {
              await session.acceptInvite(room);
              onOpen(room.roomId);
            })
          }
        >
          Accept
        </button>
      </span>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}
