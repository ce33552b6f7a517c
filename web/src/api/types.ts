// The shapes of the client-server API that this client uses (Matrix spec, v1.x).
// Only the fields we read are typed; everything else passes through untouched.

export type JsonObject = Record<string, unknown>;

/** A room event as /sync and /messages deliver it (client format). */
export interface RoomEvent {
  event_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: JsonObject;
  state_key?: string;
  /** m.room.redaction: the redacted event (top level before room version 11, also in content). */
  redacts?: string;
  unsigned?: {
    age?: number;
    transaction_id?: string;
    prev_content?: JsonObject;
    redacted_because?: unknown;
    [key: string]: unknown;
  };
  room_id?: string;
}

/** Stripped state (invites) has neither event_id nor origin_server_ts. */
export interface StrippedStateEvent {
  type: string;
  state_key: string;
  sender: string;
  content: JsonObject;
}

export interface BasicEvent {
  type: string;
  content: JsonObject;
}

export interface Timeline {
  events?: RoomEvent[];
  limited?: boolean;
  prev_batch?: string;
}

export interface RoomSummary {
  "m.heroes"?: string[];
  "m.joined_member_count"?: number;
  "m.invited_member_count"?: number;
}

export interface JoinedRoom {
  summary?: RoomSummary;
  state?: { events?: RoomEvent[] };
  timeline?: Timeline;
  account_data?: { events?: BasicEvent[] };
  ephemeral?: { events?: BasicEvent[] };
  unread_notifications?: { notification_count?: number; highlight_count?: number };
}

export interface InvitedRoom {
  invite_state?: { events?: StrippedStateEvent[] };
}

export interface LeftRoom {
  state?: { events?: RoomEvent[] };
  timeline?: Timeline;
}

export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, JoinedRoom>;
    invite?: Record<string, InvitedRoom>;
    leave?: Record<string, LeftRoom>;
    knock?: Record<string, unknown>;
  };
  account_data?: { events?: BasicEvent[] };
  presence?: { events?: BasicEvent[] };
  to_device?: { events?: unknown[] };
}

export interface MessagesResponse {
  start: string;
  end?: string;
  chunk: RoomEvent[];
  state?: RoomEvent[];
}

export interface LoginResponse {
  user_id: string;
  access_token: string;
  device_id: string;
  well_known?: { "m.homeserver"?: { base_url?: string } };
}

export interface UiaResponse {
  session?: string;
  flows?: { stages: string[] }[];
  completed?: string[];
  params?: JsonObject;
  errcode?: string;
  error?: string;
}

export interface HierarchyRoom {
  room_id: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  num_joined_members: number;
  room_type?: string;
  join_rule?: string;
  world_readable: boolean;
  guest_can_join: boolean;
  children_state: StrippedStateEvent[];
}

export interface CreateRoomRequest {
  name?: string;
  topic?: string;
  preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  visibility?: "public" | "private";
  room_alias_name?: string;
  invite?: string[];
  is_direct?: boolean;
  creation_content?: JsonObject;
  initial_state?: { type: string; state_key?: string; content: JsonObject }[];
  power_level_content_override?: JsonObject;
  room_version?: string;
}
