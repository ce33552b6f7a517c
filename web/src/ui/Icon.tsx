// The app's icons: inline SVG strokes drawn in the text colour. Emoji and symbol characters
// depend on the fonts a device has (headless and minimal Linux browsers show empty boxes).

const PATHS = {
  menu: "M4 6h16M4 12h16M4 18h16",
  home: "M3 11l9-8 9 8M5 10v10h5v-6h4v6h5V10",
  join: "M10 17l5-5-5-5M15 12H3M14 4h5a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-5",
  leave: "M14 17l5-5-5-5M19 12H8M10 4H5a1 1 0 0 0-1 1v14a1 1 0 0 0 1 1h5",
  edit: "M4 20h4L19 9l-4-4L4 16zM13 7l4 4",
  delete: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
  reply: "M10 8l-5 4 5 4M5 12h9a5 5 0 0 1 5 5v1",
  smile: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM9 10h.01M15 10h.01M8.5 14.5a4 4 0 0 0 7 0",
  attach: "M16 7v9a4 4 0 0 1-8 0V6a2.5 2.5 0 0 1 5 0v9a1 1 0 0 1-2 0V8",
  file: "M6 3h8l4 4v14H6zM14 3v4h4M9 13h6M9 17h6",
  mail: "M3 6h18v12H3zM3 6l9 7 9-7",
  invite: "M15 20a6 6 0 0 0-12 0M9 12a4 4 0 1 0 0-8a4 4 0 0 0 0 8zM19 8v6M16 11h6",
} as const;

export type IconName = keyof typeof PATHS;

/** Decorative: the button or link around it carries the label. */
export function Icon({ name }: { name: IconName }) {
  return (
    <svg
      className="icon-svg"
      viewBox="0 0 24 24"
      width="1.25em"
      height="1.25em"
      fill="none"
      stroke="currentColor"
      strokeWidth={2}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
