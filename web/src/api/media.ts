// Media: mxc:// URIs and the authenticated media API (client v1). Downloads and thumbnails need
// the access token in the Authorization header, so an <img src> cannot load them directly: the
// app fetches them with the header into Blobs (see media/blobCache.ts).

export interface MxcUri {
  serverName: string;
  mediaId: string;
}

const MEDIA_V1 = "/_matrix/client/v1/media";
export const UPLOAD_PATH = "/_matrix/media/v3/upload";

// The spec: server_name is a host (with an optional port, IPv6 in brackets); media_id is
// [A-Za-z0-9_-]+. Anything else is refused rather than turned into a surprising path.
const MXC = /^mxc:\/\/((?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?)\/([A-Za-z0-9_-]+)$/;

/** The parts of an `mxc://server/mediaId` URI, or undefined if it is not one. */
export function parseMxc(uri: unknown): MxcUri | undefined {
  if (typeof uri !== "string") return undefined;
  const match = MXC.exec(uri);
  if (!match) return undefined;
  return { serverName: match[1]!, mediaId: match[2]! };
}

const enc = encodeURIComponent;

/** GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}] */
export function downloadUrl(baseUrl: string, mxc: string, fileName?: string): string | undefined {
  const parts = parseMxc(mxc);
  if (!parts) return undefined;
  const name = fileName ? `/${enc(fileName)}` : "";
  return `${baseUrl}${MEDIA_V1}/download/${enc(parts.serverName)}/${enc(parts.mediaId)}${name}`;
}

export type ThumbnailMethod = "scale" | "crop";

/** GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}?width=&height=&method= */
export function thumbnailUrl(
  baseUrl: string,
  mxc: string,
  width: number,
  height: number,
  method: ThumbnailMethod = "scale",
): string | undefined {
  const parts = parseMxc(mxc);
  if (!parts) return undefined;
  const query = new URLSearchParams({
    width: String(Math.max(1, Math.round(width))),
    height: String(Math.max(1, Math.round(height))),
    method,
  });
  return `${baseUrl}${MEDIA_V1}/thumbnail/${enc(parts.serverName)}/${enc(parts.mediaId)}?${query}`;
}

/** The size to lay an image out at: its own size, scaled down to fit the box, never up. */
export function fitWithin(
  size: { w?: unknown; h?: unknown } | undefined,
  maxWidth: number,
  maxHeight: number,
): { width: number; height: number } | undefined {
  const w = size?.w;
  const h = size?.h;
  if (typeof w !== "number" || typeof h !== "number" || !(w > 0) || !(h > 0)) return undefined;
  const scale = Math.min(1, maxWidth / w, maxHeight / h);
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

/** "1.4 MB" */
export function formatSize(bytes: unknown): string {
  if (typeof bytes !== "number" || !(bytes >= 0)) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
