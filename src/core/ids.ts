/**
 * Job ids and prefix lookup. Ids are 8 characters of [0-9a-z], random, so they can be typed
 * and shortened like git or docker ids.
 */

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Makes a new job id from random bytes (the caller supplies them, so this stays pure). */
export function makeJobId(random: Uint8Array): string {
  let id = '';
  for (let i = 0; i < 8; i++) id += ALPHABET[(random[i] ?? 0) % 36];
  return id;
}

/** Whether a string can be (a prefix of) a job id, so it is safe to use in a path. */
export function isIdLike(text: string): boolean {
  return /^[0-9a-z]{1,32}$/.test(text);
}

export type PrefixMatch<T> = { kind: 'one'; item: T } | { kind: 'none' } | { kind: 'many'; items: T[] };

/** Resolves an id or unambiguous prefix against candidates; an exact id always wins. */
export function matchPrefix<T extends { id: string }>(items: readonly T[], prefix: string): PrefixMatch<T> {
  const exact = items.find((j) => j.id === prefix);
  if (exact) return { kind: 'one', item: exact };
  const hits = items.filter((j) => j.id.startsWith(prefix));
  if (hits.length === 0) return { kind: 'none' };
  if (hits.length === 1) return { kind: 'one', item: hits[0] as T };
  return { kind: 'many', items: hits };
}
