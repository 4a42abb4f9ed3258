/**
 * Names of files that travel between this machine and a job's working folder (`--include`,
 * `gpuq get`): relative, without "." or ".." parts, without control characters, bounded. One
 * rule for both directions; templates/unpack.py and templates/collect.py apply the same rule on
 * the node.
 */

/** Longest part of a name, in UTF-8 bytes (the usual file system limit). */
export const NAME_PART_MAX_BYTES = 255;
/** Longest whole name, in UTF-8 bytes. */
export const NAME_MAX_BYTES = 1024;
/** Deepest nesting of folders in a name. */
export const NAME_MAX_DEPTH = 32;

/**
 * Why `name` cannot be a file's name inside a job's working folder, or null when it can. A safe
 * name is relative, has no empty, "." or ".." part, no control character (C0, DEL, C1, line or
 * paragraph separator), no backslash, no U+FFFD (a name that was not UTF-8) or lone surrogate,
 * and stays within the bounds above. Written once here so that a name the job chose can never
 * reach outside the folder it is written to.
 */
export function nameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.startsWith('/')) return 'is absolute';
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return 'holds a control character';
  if (/\uFFFD|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(name))
    return 'is not valid UTF-8';
  if (name.includes('\\')) return 'holds a backslash';
  if (Buffer.byteLength(name) > NAME_MAX_BYTES) return `is longer than ${NAME_MAX_BYTES} bytes`;
  const parts = name.split('/');
  if (parts.length > NAME_MAX_DEPTH) return `is nested deeper than ${NAME_MAX_DEPTH} folders`;
  for (const p of parts) {
    if (p === '') return 'has an empty part (a leading, doubled or trailing "/")';
    if (p === '.' || p === '..') return `has a "${p}" part`;
    if (Buffer.byteLength(p) > NAME_PART_MAX_BYTES) return `has a part longer than ${NAME_PART_MAX_BYTES} bytes`;
  }
  return null;
}

/** A name as messages print it: JSON-quoted, so a hostile name shows its escapes, not its effects. */
export function shownName(name: string): string {
  return JSON.stringify(name.length > 300 ? `${name.slice(0, 300)}…` : name);
}

/**
 * Where an `--include` lands in the working folder: its last path part (`data/` → `data`,
 * `../lib/util.py` → `util.py`), or null when the argument has none (`/`, `..`, `.`: the
 * caller names a folder by its own name instead).
 */
export function includeBase(arg: string): string | null {
  const parts = arg.split('/').filter((p) => p !== '' && p !== '.');
  const last = parts[parts.length - 1];
  if (last === undefined || last === '..') return null;
  return last;
}

/**
 * The first clash in a set of names bound for one folder: the same name twice, or a name that is
 * both a file and a folder's part (`a` and `a/b`). Null when every name is distinct.
 */
export function firstClash(names: readonly { name: string; kind: 'file' | 'dir' }[]): string | null {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const { name, kind } of names) {
    const parents = name.split('/').slice(0, -1);
    for (let i = 1; i <= parents.length; i++) {
      const p = parents.slice(0, i).join('/');
      if (files.has(p)) return p;
      dirs.add(p);
    }
    if (kind === 'file') {
      if (files.has(name) || dirs.has(name)) return name;
      files.add(name);
    } else {
      if (files.has(name)) return name;
      dirs.add(name);
    }
  }
  return null;
}
