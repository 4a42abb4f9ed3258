/**
 * Pure formatting of numbers for people: sizes ("1.98 GiB"), durations ("1h30m"), and the
 * option values a hint suggests ("--memory 4g"), which parse back with units.ts.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;
const OPTION_UNITS = ['', 'k', 'm', 'g', 't'] as const;

/** Rounds to at most `digits` decimals and drops trailing zeros: 2.00 → "2", 1.50 → "1.5". */
function trimmed(value: number, digits: number): string {
  const text = value.toFixed(digits);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/**
 * A byte count in binary units with at most two decimals: 512 → "512 B", 2 * 1024 ** 3 →
 * "2 GiB", 2125824819 → "1.98 GiB". Evidence and summaries quote sizes this way.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  let unit = 0;
  let value = bytes;
  while (unit < BYTE_UNITS.length - 1 && Number(value.toFixed(2)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${trimmed(value, unit === 0 ? 0 : 2)} ${BYTE_UNITS[unit]}`;
}

/**
 * A size as a gpuq option value (`512m`, `4g`, `1.5g`) that parseSize reads back; used by hints
 * that suggest a new limit. Rounds to one decimal of the largest unit that keeps it ≥ 1.
 */
export function formatSizeOption(bytes: number): string {
  const b = Math.max(1, Math.round(bytes));
  let unit = 0;
  let value = b;
  while (unit < OPTION_UNITS.length - 1 && value >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${trimmed(value, unit === 0 ? 0 : 1)}${OPTION_UNITS[unit]}`;
}

/**
 * A duration in the same compact form users type (`45s`, `30m`, `1h30m`, `2d3h`), so that a
 * suggested `--timeout` parses back with parseDuration. Under a second it shows milliseconds.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds > 0 && seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  let rest = Math.round(seconds);
  if (rest === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join('');
}

/** A ratio as a whole percentage ("98%"); evidence compares peaks with limits this way. */
export function formatPercent(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

/** "1 OOM kill", "3 OOM kills": a count with its noun. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/**
 * Shortens a log line for a verdict: at most `max` characters, cut at a sentence end where one
 * falls in the second half, else at `max` with an ellipsis. Torch's OOM message runs to ~600.
 */
export function clip(text: string, max = 160): string {
  const t = text.trim();
  if (t.length <= max) return t;
  const head = t.slice(0, max);
  const stop = head.lastIndexOf('. ');
  if (stop >= max / 2) return head.slice(0, stop + 1);
  return `${head.slice(0, max - 1).trimEnd()}…`;
}

// CSI (ESC [ … final), OSC (ESC ] … BEL or ST), single-character escapes, and 8-bit CSI.
const ESCAPES =
  /\u001B(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001B]*(?:\u0007|\u001B\\)?|[@-Z\\-_])|\u009B[0-?]*[ -/]*[@-~]/g;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** Removes terminal escape sequences (colours, cursor moves, titles, hyperlinks) from text. */
export function stripAnsi(text: string): string {
  return text.replace(ESCAPES, '');
}

/**
 * Text a job wrote, made safe to print on the user's terminal: escape sequences (colours,
 * window titles, clipboard writes) and other control characters removed; newlines and tabs kept.
 */
export function printable(text: string): string {
  return stripAnsi(text).replace(CONTROL, '');
}
