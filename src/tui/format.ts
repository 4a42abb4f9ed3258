/**
 * Helpers that only the live view and its plain printer need: bars, sparklines and
 * terminal-safe rows of text. Units (sizes, durations, percentages, timestamps) are in
 * src/core/format.ts. No I/O, no state.
 */
import { stripAnsi } from '../core/format.js';

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
