// The app's one route: /#/room/<room ID>, which notifications open (see push/payload.ts).

export { roomRoute } from "../push/payload";

export function roomFromHash(hash: string): string | undefined {
  const match = /^#\/room\/(.+)$/.exec(hash);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}
