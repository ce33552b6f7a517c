// Draws the app icons (a speech bubble on a rounded square) as PNG files, with nothing but
// Node's zlib. Run `npm run icons` after changing the drawing; the PNGs are committed.

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodePng } from "./png.mjs";

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "public", "icons");
const BACKGROUND = [0x1e, 0x1f, 0x22];
const ACCENT = [0x4f, 0x7c, 0xf7];
const WHITE = [0xff, 0xff, 0xff];

/** @param {number} x @param {number} y @param {boolean} maskable unit-square coordinates */
function colourAt(x, y, maskable) {
  // Maskable icons are cropped to a circle by the platform: fill the square, keep the
  // drawing inside the middle 80 %.
  const scale = maskable ? 0.8 : 1;
  const u = (x - 0.5) / scale + 0.5;
  const v = (y - 0.5) / scale + 0.5;
  if (!maskable && !inRoundedSquare(x, y, 0.18)) return null;
  // The bubble: an ellipse with a tail at the lower left.
  const inEllipse = ((u - 0.5) / 0.32) ** 2 + ((v - 0.46) / 0.25) ** 2 <= 1;
  const inTail = v > 0.6 && v < 0.8 && u > 0.28 && u < 0.46 && u - 0.28 < (0.8 - v) * 0.9;
  if (inEllipse || inTail) {
    // Three dots: "someone is writing".
    for (const cx of [0.38, 0.5, 0.62]) {
      if ((u - cx) ** 2 + (v - 0.46) ** 2 <= 0.045 ** 2) return ACCENT;
    }
    return WHITE;
  }
  return maskable ? ACCENT : blend(ACCENT, BACKGROUND, Math.max(0, v - 0.2) * 0.35);
}

function inRoundedSquare(x, y, radius) {
  const dx = Math.max(radius - x, 0, x - (1 - radius));
  const dy = Math.max(radius - y, 0, y - (1 - radius));
  return dx * dx + dy * dy <= radius * radius;
}

function blend(a, b, t) {
  return a.map((value, i) => Math.round(value * (1 - t) + (b[i] ?? 0) * t));
}

/** RGBA pixels, 4x4 supersampled for smooth edges. */
function draw(size, maskable) {
  const pixels = Buffer.alloc(size * size * 4);
  const samples = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const colour = colourAt((px + (sx + 0.5) / samples) / size, (py + (sy + 0.5) / samples) / size, maskable);
          if (colour) {
            r += colour[0] ?? 0;
            g += colour[1] ?? 0;
            b += colour[2] ?? 0;
            a += 255;
          }
        }
      }
      const n = samples * samples;
      const alpha = a / n;
      const i = (py * size + px) * 4;
      // Colours are averaged over covered samples only (straight, not premultiplied, alpha).
      const covered = a / 255 || 1;
      pixels[i] = Math.round(r / covered);
      pixels[i + 1] = Math.round(g / covered);
      pixels[i + 2] = Math.round(b / covered);
      pixels[i + 3] = Math.round(alpha);
    }
  }
  return pixels;
}

mkdirSync(out, { recursive: true });
for (const [name, size, maskable] of /** @type {const} */ ([
  ["icon-192.png", 192, false],
  ["icon-512.png", 512, false],
  ["maskable-512.png", 512, true],
  ["apple-touch-icon.png", 180, true],
])) {
  writeFileSync(join(out, name), encodePng(size, size, draw(size, maskable)));
  console.log(`wrote public/icons/${name}`);
}
