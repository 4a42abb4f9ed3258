/**
 * THE units module: every number gpuq prints for people goes through here. Pure, no state.
 *
 * Each unit has few named styles, chosen by where the text lands:
 * - sizes: `text` for sentences ("1.98 GiB", "2 GiB"), `column` for tables and the live view
 *   (three significant digits, so a ticking figure keeps its width: "20.0 MiB", "1.00 GiB"), and
 *   the option form formatSizeOption ("512m", "4g") that units.ts parseSize reads back;
 * - durations: `text`, the form users type ("45s", "1h30m", "2d3h"), which parseDuration reads
 *   back and which verdicts and hints quote, and `column` for tables and the live view ("42s",
 *   "1m05s", "2h03m07s", "3d04h");
 * - percentages: one form, from a ratio (0.25 → "25%");
 * - timestamps: ISO 8601 UTC to the second.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;
const OPTION_UNITS = ['b', 'k', 'm', 'g', 't'] as const;

/** Where a size or a duration is printed: in a sentence, or in a table column or live view. */
export type UnitStyle = 'text' | 'column';

/** Rounds to at most `digits` decimals and drops trailing zeros: 2.00 → "2", 1.50 → "1.5". */
function trimmed(value: number, digits: number): string {
  const text = value.toFixed(digits);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/**
 * A byte count in binary units. `text` (evidence, summaries, pages): at most two decimals, trailing
 * zeros dropped (512 → "512 B", 2 GiB → "2 GiB", 2125824819 → "1.98 GiB"; "? B" for nonsense).
 * `column` (tables, the live view, watch lines): three significant digits ("20.0 MiB", "1.00 GiB",
 * "120 MiB"; "?" for nonsense).
 */
export function formatBytes(bytes: number, style: UnitStyle = 'text'): string {
  if (style === 'column') return columnBytes(bytes);
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  let unit = 0;
  let value = bytes;
  while (unit < BYTE_UNITS.length - 1 && Number(value.toFixed(2)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${trimmed(value, unit === 0 ? 0 : 2)} ${BYTE_UNITS[unit]}`;
}

function columnBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '?';
  const sign = bytes < 0 ? '-' : '';
  let v = Math.abs(bytes);
  let unit = 0;
  while (v >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  if (unit === 0) return `${sign}${Math.round(v)} B`;
  // Round first, so 1023.99 KiB does not print as "1024 KiB" with a decimal jump.
  const digits = v < 9.995 ? 2 : v < 99.95 ? 1 : 0;
  return `${sign}${v.toFixed(digits)} ${BYTE_UNITS[unit]}`;
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
 * A duration in seconds. `text`: the compact form users type (`45s`, `30m`, `1h30m`, `2d3h`), so
 * a suggested `--timeout` parses back with parseDuration; under a second it shows milliseconds,
 * nonsense is "?". `column` (tables, the live view, watch lines): floored, fixed shape per range
 * ("42s", "1m05s", "2h03m07s", "3d04h"); negatives and nonsense are "0s".
 */
export function formatDuration(seconds: number, style: UnitStyle = 'text'): string {
  return style === 'column' ? columnDuration(seconds) : textDuration(seconds);
}

function textDuration(seconds: number): string {
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

function columnDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '0s';
  const s = Math.floor(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m${two(s % 60)}s`;
  return `${Math.floor(s / 86400)}d${two(Math.floor((s % 86400) / 3600))}h`;
}

/**
 * A ratio as a whole percentage: 0.25 → "25%", 0.994 → "99%", 1.5 → "150%" (CPU may pass one
 * core); "?%" for nonsense. Callers holding a percentage (CPU, GPU utilisation) divide by 100.
 */
export function formatPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return '?%';
  // Rounded to 9 decimals first, so 0.145 * 100 = 14.499999… still prints as 15%.
  return `${Math.round(Number((ratio * 100).toFixed(9)))}%`;
}

/** ms since the epoch as ISO 8601 UTC to the second ("2025-01-02T03:04:05Z"), for timestamped lines. */
export function formatTimestamp(ms: number): string {
  if (!Number.isFinite(ms)) return '????-??-??T??:??:??Z';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** ISO 8601 text to ms since the epoch, or null when absent or unreadable (the ledger's times). */
export function parseIso(text: string | null | undefined): number | null {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
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

// Bidirectional overrides and isolates reorder what follows them on screen.
const BIDI = /[\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text for one field of one line (a job's name or file, a folder, a GPU's name): as printable,
 * and also without line breaks, tabs or bidirectional overrides, so a name cannot start a line
 * of its own (a fake "done: succeeded") or reorder the rest of the line.
 */
export function printableLine(text: string): string {
  return printable(text.replace(/[\r\n\t\u000b\u000c]/g, ' ')).replace(BIDI, '');
}
