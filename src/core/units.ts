/**
 * Parsing of the durations and sizes users type (`90s`, `1h30m`, `512m`, `1.5G`).
 * Pure; every refusal says which option and which forms are accepted.
 */
import { usageError } from './errors.js';

const DURATION_UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Longest accepted duration: 30 days. Beyond that a value is a typo, not a plan. */
export const MAX_DURATION_S = 30 * 86400;
/** Largest accepted size: 64 TiB. */
export const MAX_SIZE_BYTES = 64 * 1024 ** 4;

/** The kinds of amount a user types: a duration (seconds), a size (bytes) or a whole count. */
export type AmountKind = 'duration' | 'size' | 'count';

/** Inclusive bounds of an amount, in its base unit (seconds, bytes, items). */
export interface AmountBounds {
  min: number;
  max: number;
}

/**
 * Parses `90s`, `30m`, `2h`, `1h30m`, `1d` or `500ms` into seconds. A bare number is refused: a
 * Slurm user's `--timeout 5` means minutes, a shell user's seconds, and a guess kills the job.
 * `what` names the option in the error (e.g. "--timeout").
 */
export function parseDuration(text: string, what: string, max = MAX_DURATION_S): number {
  const s = String(text).trim().toLowerCase();
  const form = 'a duration like 90s, 30m, 2h or 1h30m';
  if (s === '') throw usageError(`${what} is empty; give ${form}.`);
  if (BARE.test(s))
    throw Number(s) === 0
      ? usageError(`${what} must be more than zero; give ${form}.`)
      : bareNumber(what, text, ['s', 'm']);
  const re = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/gy;
  let total = 0;
  let pos = 0;
  const seen = new Set<string>();
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const unit = m[2] as string;
    if (seen.has(unit)) throw usageError(`${what} "${text}" repeats the unit ${unit}; give ${form}.`);
    seen.add(unit);
    total += Number(m[1]) * (DURATION_UNITS[unit] as number);
    pos = re.lastIndex;
  }
  if (pos !== s.length || seen.size === 0) throw usageError(`${what} "${text}" is not ${form}.`);
  if (!Number.isFinite(total) || total <= 0) throw usageError(`${what} must be more than zero; give ${form}.`);
  if (total > max) throw usageError(`${what} "${text}" is longer than ${inWords(max, DURATION_WORDS)}; give ${form}.`);
  return total;
}

/**
 * Parses `512m`, `2g`, `1.5G`, `64MiB` or `4096b` into bytes (binary units: 1k = 1024). A bare
 * number is refused: `--memory 500` meant 500 MiB to its author and 500 bytes to the kernel.
 */
export function parseSize(text: string, what: string, max = MAX_SIZE_BYTES): number {
  const s = String(text).trim().toLowerCase();
  const form = 'a size like 512m, 2g or 1.5G';
  if (BARE.test(s))
    throw Number(s) === 0
      ? usageError(`${what} must be more than zero; give ${form}.`)
      : bareNumber(what, text, ['m', 'g']);
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(s);
  if (!m) throw usageError(`${what} "${text}" is not ${form}.`);
  const unit = m[2] as string;
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) throw usageError(`${what} "${text}" has an unknown unit "${unit}"; give ${form}.`);
  const bytes = Math.round(Number(m[1]) * mult);
  if (!Number.isFinite(bytes) || bytes <= 0) throw usageError(`${what} must be more than zero; give ${form}.`);
  if (bytes > max) throw usageError(`${what} "${text}" is larger than ${inWords(max, SIZE_WORDS)}; give ${form}.`);
  return bytes;
}

/** A number with no unit, which parseDuration and parseSize refuse rather than guess at. */
const BARE = /^\d+(\.\d+)?$/;

/** The refusal of a bare number, spelling out the two likely readings ("500m or 500g?"). */
function bareNumber(what: string, text: string, units: [string, string]): Error {
  const n = String(text).trim();
  const [a, b] = units;
  // an option is shown as it would be typed (--memory 500m); a config field by its value
  const as = (unit: string) => (what.startsWith('--') ? `${what} ${n}${unit}` : `"${n}${unit}"`);
  return usageError(
    `${what} "${n}" has no unit: did you mean ${as(a)} or ${as(b)}?`,
    `Give the unit: ${n}${a} or ${n}${b} (${a === 's' ? 'ms, s, m, h, d' : 'b, k, m, g, t'}).`,
  );
}

/** Parses a positive whole count such as `--pids 64`, refusing zero, negatives and absurd values. */
export function parseCount(text: string, what: string, max = 1_000_000): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s)) throw usageError(`${what} "${text}" is not a whole number; give a count like 64.`);
  const n = Number(s);
  if (n <= 0) throw usageError(`${what} must be more than zero; give a count like 64.`);
  if (n > max) throw usageError(`${what} ${n} is more than the allowed ${max}.`);
  return n;
}

/** Parses a whole count that may be zero (e.g. `--gpus 0`). */
export function parseCountOrZero(text: string, what: string, max = 1024): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s)) throw usageError(`${what} "${text}" is not a whole number; give a count like 1.`);
  const n = Number(s);
  if (n > max) throw usageError(`${what} ${n} is more than the allowed ${max}.`);
  return n;
}

/**
 * Parses an amount of any kind within inclusive bounds, so a table of options (core/limits)
 * can parse each one by its kind. Messages are those of the parser for the kind.
 */
export function parseAmount(kind: AmountKind, text: string, what: string, bounds: AmountBounds): number {
  let value: number;
  if (kind === 'duration') value = parseDuration(text, what, bounds.max);
  else if (kind === 'size') value = parseSize(text, what, bounds.max);
  else value = bounds.min <= 0 ? parseCountOrZero(text, what, bounds.max) : parseCount(text, what, bounds.max);
  if (value < bounds.min) {
    const least =
      kind === 'duration'
        ? inWords(bounds.min, DURATION_WORDS)
        : kind === 'size'
          ? inWords(bounds.min, SIZE_WORDS)
          : String(bounds.min);
    throw usageError(`${what} "${text}" is less than the smallest allowed ${least}.`);
  }
  return value;
}

const DURATION_WORDS: [number, string][] = [
  [86400, 'days'],
  [3600, 'hours'],
  [60, 'minutes'],
  [1, 'seconds'],
  [0.001, 'ms'],
];
const SIZE_WORDS: [number, string][] = [
  [1024 ** 4, 'TiB'],
  [1024 ** 3, 'GiB'],
  [1024 ** 2, 'MiB'],
  [1024, 'KiB'],
  [1, 'bytes'],
];

/** A bound in the largest unit that divides it: 30 days, 64 TiB, 1 ms. */
function inWords(n: number, units: [number, string][]): string {
  for (const [size, name] of units) {
    const q = n / size;
    if (Math.abs(q - Math.round(q)) < 1e-9 && q >= 1) return `${Math.round(q)} ${name}`;
  }
  return String(n);
}
