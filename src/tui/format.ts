/**
 * Small pure formatters shared by the live view and the plain printer: sizes, durations,
 * percentages, timestamps, bars, sparklines and terminal-safe text. No I/O, no state.
 * (Sizes and durations are fixed-width here, for the view's columns; src/core/format.ts
 * has the forms that verdicts and hints use.)
 */
import { stripAnsi } from '../core/format.js';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Bytes as people read them: "512 B", "1.98 GiB", "19.8 MiB", "198 KiB" (binary units, 3 digits). */
export function formatBytes(bytes: number): string {
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

/** A duration in seconds as "42s", "1m05s", "2h03m07s" or "3d04h" (floored; negatives are 0s). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '0s';
  const s = Math.floor(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m${two(s % 60)}s`;
  return `${Math.floor(s / 86400)}d${two(Math.floor((s % 86400) / 3600))}h`;
}

/** A percentage rounded to a whole number, e.g. "25%" (CPU may exceed 100%). */
export function formatPercent(pct: number): string {
  if (!Number.isFinite(pct)) return '?%';
  return `${Math.round(pct)}%`;
}

/** ms since the epoch as ISO 8601 UTC to the second ("2025-01-02T03:04:05Z"), for timestamped lines. */
export function formatTimestamp(ms: number): string {
  if (!Number.isFinite(ms)) return '????-??-??T??:??:??Z';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** ISO 8601 text to ms since the epoch, or null when absent or unreadable. */
export function parseIso(text: string | null | undefined): number | null {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

/** A horizontal bar of `width` cells filled to `fraction` (clamped to 0..1). */
export function bar(fraction: number, width: number): string {
  const w = Math.max(0, Math.floor(width));
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.round(f * w);
  return '█'.repeat(filled) + '░'.repeat(w - filled);
}

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/**
 * The last `width` values as a sparkline, scaled from 0 to `max` (default: the largest value
 * shown). Fewer values than `width` give a shorter line; non-finite values count as 0.
 */
export function sparkline(values: readonly number[], width: number, max?: number): string {
  const w = Math.max(0, Math.floor(width));
  if (w === 0 || values.length === 0) return '';
  const shown = values.slice(-w).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const top = max !== undefined && max > 0 ? max : Math.max(...shown);
  return shown
    .map((v) => {
      if (top <= 0) return SPARKS[0];
      const i = Math.round((Math.min(v, top) / top) * (SPARKS.length - 1));
      return SPARKS[i];
    })
    .join('');
}

/**
 * Makes one line of program output safe to draw in one terminal row: drops escape sequences,
 * keeps what a terminal would finally show after carriage returns (progress bars such as tqdm
 * rewrite the line with '\r'), expands tabs to 8-column stops and removes other control chars.
 */
export function sanitizeLine(line: string): string {
  let s = stripAnsi(line);
  if (s.includes('\r')) {
    const parts = s.split('\r').filter((p) => p !== '');
    s = parts.length > 0 ? (parts[parts.length - 1] as string) : '';
  }
  if (s.includes('\t')) {
    let out = '';
    for (const ch of s) {
      if (ch === '\t') out += ' '.repeat(8 - (out.length % 8));
      else out += ch;
    }
    s = out;
  }
  return s.replace(/[\u0000-\u001F\u007F-\u009F]/g, '');
}

/** Shortens text to at most `width` characters, marking the cut with '…'. */
export function truncate(text: string, width: number): string {
  const w = Math.max(0, Math.floor(width));
  if (text.length <= w) return text;
  if (w === 0) return '';
  return `${text.slice(0, w - 1)}…`;
}

/**
 * Wraps text into lines of at most `width` characters: at spaces where it can, hard elsewhere.
 * Escape sequences are removed first so the count matches what the terminal shows.
 */
export function wrapText(text: string, width: number): string[] {
  const w = Math.max(1, Math.floor(width));
  const out: string[] = [];
  for (const raw of text.replace(/\r\n/g, '\n').split('\n')) {
    let line = sanitizeLine(raw).replace(/\s+$/, '');
    if (line === '') {
      out.push('');
      continue;
    }
    while (line.length > w) {
      const cut = line.lastIndexOf(' ', w);
      if (cut > 0) {
        out.push(line.slice(0, cut).replace(/\s+$/, ''));
        line = line.slice(cut + 1);
      } else {
        out.push(line.slice(0, w));
        line = line.slice(w);
      }
    }
    out.push(line);
  }
  return out;
}
