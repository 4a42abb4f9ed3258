/**
 * Shell quoting for everything gpuq interpolates into bash, on this machine or a node.
 * Built on shell-quote so that no hand-written escaping decides what runs.
 */
import { quote } from 'shell-quote';

/** Quotes one value as a single bash word; the result never expands. */
export function sh(value: string | number): string {
  const s = String(value);
  if (s === '') return "''";
  return quote([s]);
}

/** Quotes several values as separate bash words, separated by spaces. */
export function shWords(values: readonly (string | number)[]): string {
  return values.map(sh).join(' ');
}

/**
 * A path on a node as a bash word: "~/x" becomes "$HOME"/'x' so the remote home is used,
 * everything else is quoted literally.
 */
export function shPath(path: string): string {
  if (path === '~') return '"$HOME"';
  if (path.startsWith('~/')) return `"$HOME"/${sh(path.slice(2))}`;
  return sh(path);
}
