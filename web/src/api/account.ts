// Account settings and invites over the standard client-server API: the display name and avatar, the
// devices (list, rename, delete with user-interactive auth) and inviting a user to a room.
// Built on MatrixApi.request, so errors are the client's MatrixApiError / NetworkError.

import { MatrixApiError, isObject, type MatrixApi } from "./client";
import { parseMxc } from "./media";
import type { JsonObject, UiaResponse } from "./types";

const CLIENT_V3 = "/_matrix/client/v3";
const enc = encodeURIComponent;

// -- user IDs -------------------------------------------------------------------------------------

/** `@localpart:server`: the localpart without `:` or whitespace, the server a host name (or an
 *  IPv4 / [IPv6] literal) with an optional port. Deliberately lenient about historical
 *  localparts (upper case etc.), which other servers may still have. */
const USER_ID = /^@[^\s:]+:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

export function isUserId(value: string): boolean {
  return value.length <= 255 && USER_ID.test(value);
}

/** What a user typed, made into a user ID: `@name:server` as is, a bare `name` or `@name` on our
 *  own server. Undefined when it does not make a valid user ID. */
export function parseUserId(input: string, ownServer: string): string | undefined {
  const trimmed = input.trim();
  if (!trimmed) return undefined;
  const candidate = trimmed.includes(":") ? trimmed : `@${trimmed.replace(/^@/, "")}:${ownServer}`;
  return isUserId(candidate) ? candidate : undefined;
}

/** A list of people typed in one field (separated by commas or spaces): their user IDs, and
 *  what could not be read as one. */
export function parseUserIds(input: string, ownServer: string): { userIds: string[]; invalid: string[] } {
  const userIds: string[] = [];
  const invalid: string[] = [];
  for (const part of input.split(/[\s,]+/).filter(Boolean)) {
    const userId = parseUserId(part, ownServer);
    if (userId === undefined) invalid.push(part);
    else if (!userIds.includes(userId)) userIds.push(userId);
  }
  return { userIds, invalid };
}

// -- invites --------------------------------------------------------------------------------------

export async function inviteUser(api: MatrixApi, roomId: string, userId: string): Promise<void> {
  await api.request("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/invite`, { body: { user_id: userId } });
}

// -- profile --------------------------------------------------------------------------------------

/** The display name, or undefined when none is set. */
export async function getDisplayName(api: MatrixApi, userId: string): Promise<string | undefined> {
  try {
    const answer = await api.request<JsonObject>("GET", `${CLIENT_V3}/profile/${enc(userId)}/displayname`);
    const name = answer["displayname"];
    return typeof name === "string" ? name : undefined;
  } catch (error) {
    if (error instanceof MatrixApiError && error.status === 404) return undefined;
    throw error;
  }
}

export async function setDisplayName(api: MatrixApi, userId: string, displayName: string): Promise<void> {
  await api.request("PUT", `${CLIENT_V3}/profile/${enc(userId)}/displayname`, {
    body: { displayname: displayName },
  });
}

/** The avatar's mxc:// URI, or undefined when none is set (or it is not an mxc:// URI). */
export async function getAvatarUrl(api: MatrixApi, userId: string): Promise<string | undefined> {
  try {
    const answer = await api.request<JsonObject>("GET", `${CLIENT_V3}/profile/${enc(userId)}/avatar_url`);
    const url = answer["avatar_url"];
    return typeof url === "string" && parseMxc(url) ? url : undefined;
  } catch (error) {
    if (error instanceof MatrixApiError && error.status === 404) return undefined;
    throw error;
  }
}

export async function setAvatarUrl(api: MatrixApi, userId: string, avatarUrl: string): Promise<void> {
  await api.request("PUT", `${CLIENT_V3}/profile/${enc(userId)}/avatar_url`, { body: { avatar_url: avatarUrl } });
}

/** Uploads an image and makes it the avatar; answers its mxc:// URI. Refuses what is not an
 *  image before uploading anything. */
export async function changeAvatar(api: MatrixApi, userId: string, file: Blob & { name?: string }): Promise<string> {
  if (!file.type.startsWith("image/")) throw new Error("Pick an image file for the avatar");
  const { content_uri: uri } = await api.upload(file, { fileName: file.name, contentType: file.type });
  if (!parseMxc(uri)) throw new Error("The server answered the upload without a valid mxc:// URI");
  await setAvatarUrl(api, userId, uri);
  return uri;
}

// -- devices --------------------------------------------------------------------------------------

export interface Device {
  deviceId: string;
  displayName?: string;
  lastSeenTs?: number;
  lastSeenIp?: string;
}

/** The devices, most recently seen first. */
export async function listDevices(api: MatrixApi): Promise<Device[]> {
  const answer = await api.request<JsonObject>("GET", `${CLIENT_V3}/devices`);
  const raw = Array.isArray(answer["devices"]) ? (answer["devices"] as unknown[]) : [];
  const devices: Device[] = [];
  for (const item of raw) {
    if (!isObject(item) || typeof item["device_id"] !== "string") continue;
    const device: Device = { deviceId: item["device_id"] };
    if (typeof item["display_name"] === "string") device.displayName = item["display_name"];
    if (typeof item["last_seen_ts"] === "number") device.lastSeenTs = item["last_seen_ts"];
    if (typeof item["last_seen_ip"] === "string") device.lastSeenIp = item["last_seen_ip"];
    devices.push(device);
  }
  return devices.sort((a, b) => (b.lastSeenTs ?? 0) - (a.lastSeenTs ?? 0));
}

export async function renameDevice(api: MatrixApi, deviceId: string, displayName: string): Promise<void> {
  await api.request("PUT", `${CLIENT_V3}/devices/${enc(deviceId)}`, { body: { display_name: displayName } });
}

/** The server wants the account's password before it deletes the device. `session` is the
 *  user-interactive auth session to answer in; the message says why (e.g. a wrong password). */
export class PasswordRequiredError extends Error {
  constructor(readonly session: string | undefined, message = "Confirm with your password") {
    super(message);
    this.name = "PasswordRequiredError";
  }
}

export interface PasswordAuth {
  /** The user ID (or localpart) whose password it is. */
  user: string;
  password: string;
  /** From the PasswordRequiredError of the first attempt. */
  session?: string | undefined;
}

/**
 * DELETE /devices/{deviceId}. Without `auth` it asks first; when the server answers 401 with a
 * flow that has m.login.password, this throws PasswordRequiredError (with the UIA session) and
 * the caller retries with the password. A wrong password is a PasswordRequiredError again, with
 * the server's message. Flows without the password stage cannot be done here: a plain Error.
 */
export async function deleteDevice(api: MatrixApi, deviceId: string, auth?: PasswordAuth): Promise<void> {
  const body: JsonObject = {};
  if (auth) {
    const answer: JsonObject = {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: auth.user },
      password: auth.password,
    };
    if (auth.session) answer["session"] = auth.session;
    body["auth"] = answer;
  }
  try {
    await api.request("DELETE", `${CLIENT_V3}/devices/${enc(deviceId)}`, { body });
  } catch (error) {
    if (!(error instanceof MatrixApiError) || error.status !== 401) throw error;
    const uia = error.body as UiaResponse;
    if (!Array.isArray(uia.flows)) throw error; // an ordinary 401: the token is gone
    const flows = uia.flows.map((flow) => (Array.isArray(flow.stages) ? flow.stages : []));
    if (!flows.some((stages) => stages.includes("m.login.password"))) {
      throw new Error(
        `This server asks for confirmation steps this client cannot do: ${flows.map((s) => s.join(" → ")).join("; ")}`,
      );
    }
    const session = uia.session ?? auth?.session;
    // A second 401 after a password: the server says why (M_FORBIDDEN "Invalid password").
    throw new PasswordRequiredError(session, auth ? uia.error ?? "The password was not accepted" : undefined);
  }
}

/** An error for the screen: the server's message and its errcode. */
export function describeApiError(error: unknown): string {
  if (error instanceof MatrixApiError) {
    return error.errcode && error.errcode !== "M_UNKNOWN" ? `${error.message} (${error.errcode})` : error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
