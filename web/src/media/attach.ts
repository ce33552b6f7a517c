// The content of an `m.image` / `m.file` event for a file the user picked, before its upload:
// the `url` is added by the outbox once the upload has answered.

import type { JsonObject } from "../api/types";

/** Image types browsers can show: anything else goes as a plain file. */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);

export type ImageSize = { w: number; h: number };

/** Reads an image's pixel size in the browser; undefined if it cannot be decoded. */
export async function readImageSize(file: Blob): Promise<ImageSize | undefined> {
  if (typeof createImageBitmap !== "function") return undefined;
  try {
    const bitmap = await createImageBitmap(file);
    const size = { w: bitmap.width, h: bitmap.height };
    bitmap.close();
    return size.w > 0 && size.h > 0 ? size : undefined;
  } catch {
    return undefined;
  }
}

export async function attachmentContent(
  file: Blob,
  fileName: string,
  imageSize: (file: Blob) => Promise<ImageSize | undefined> = readImageSize,
): Promise<JsonObject> {
  const mimetype = file.type || "application/octet-stream";
  const info: JsonObject = { mimetype, size: file.size };
  if (IMAGE_TYPES.has(mimetype)) {
    const size = await imageSize(file);
    // Not decodable after all: send it as a file rather than an image that shows nothing.
    if (size) return { msgtype: "m.image", body: fileName, info: { ...info, w: size.w, h: size.h } };
  }
  return { msgtype: "m.file", body: fileName, info };
}

/** The name a file goes by: its own, else one made up from its type (pasted images have none). */
export function fileNameOf(file: Blob): string {
  const name = (file as Partial<File>).name;
  if (typeof name === "string" && name.trim()) return name;
  const ext = file.type.startsWith("image/") ? file.type.slice(6).replace("jpeg", "jpg").replace(/\+.*$/, "") : "bin";
  return `pasted-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.${ext}`;
}
