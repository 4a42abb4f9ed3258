/**
 * The one place that decides whether output is colored: only on a TTY, never with --json,
 * NO_COLOR off, FORCE_COLOR on (chalk ignores NO_COLOR by itself).
 */
import { Chalk, type ChalkInstance } from 'chalk';

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
  return { enabled, c: new Chalk({ level: enabled ? 1 : 0 }) };
}
