/**
 * The one place that decides whether output is colored: only on a TTY, never with --json,
 * NO_COLOR off, FORCE_COLOR on (chalk ignores NO_COLOR by itself).
 */
import { createRequire } from 'node:module';
import type { ChalkInstance } from 'chalk';
import type { Tone } from '../core/present.js';

export interface Style {
  enabled: boolean;
  c: ChalkInstance;
}

/** Builds the style for one stream. */
export function makeStyle(opts: { isTTY: boolean; env: NodeJS.ProcessEnv; json: boolean }): Style {
  let enabled = opts.isTTY;
  if (opts.env.FORCE_COLOR !== undefined && opts.env.FORCE_COLOR !== '0') enabled = true;
  if (opts.env.FORCE_COLOR === '0') enabled = false;
  if (opts.env.NO_COLOR !== undefined && opts.env.NO_COLOR !== '') enabled = false;
  if (opts.json) enabled = false;
  return { enabled, c: enabled ? loadChalk() : PLAIN };
}

const CHALK_COLORS: Record<Tone, 'green' | 'cyan' | 'yellow' | 'red' | 'gray' | 'magenta'> = {
  ok: 'green',
  active: 'cyan',
  waiting: 'yellow',
  warn: 'yellow',
  bad: 'red',
  muted: 'gray',
  info: 'cyan',
  accent: 'magenta',
};

/**
 * Paints text in the colour of a tone: the CLI's one mapping from tone to colour (the live view's
 * is in tui/Line.tsx), so `list`, `show`, `diagnose` and `wait` agree with each other.
 */
export function paint(style: Style, tone: Tone, text: string): string {
  return style.c[CHALK_COLORS[tone]](text);
}

/** chalk is loaded only when color is on (JSON and pipes never pay for it). */
function loadChalk(): ChalkInstance {
  const { Chalk } = createRequire(import.meta.url)('chalk') as typeof import('chalk');
  return new Chalk({ level: 1 });
}

/** A stand-in with chalk's shape that returns text unchanged, for uncolored output. */
const PLAIN: ChalkInstance = new Proxy((() => undefined) as unknown as ChalkInstance, {
  get: () => PLAIN,
  apply: (_t, _this, args: unknown[]) => args.map(String).join(' '),
});
