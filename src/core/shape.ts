/**
 * Shape combinators: one small vocabulary for checking JSON that gpuq did not just produce itself
 * (the ledger, which people edit and tools damage; status.json, monitor.json and samples.jsonl,
 * which live in a folder the job can write). A shape both checks a value and names its TypeScript
 * type (`Infer<typeof shape>`), so the check and the type cannot drift apart.
 *
 * Pure and dependency-free on purpose: the ledger check runs on every read, and a schema library
 * would cost startup time on every command. A check never copies nor strips the value: what fits is
 * returned as it is (unknown fields included), and what does not yields a Problem with the path of
 * the first value that breaks the shape.
 */

declare const TYPE: unique symbol;

/** The first value that breaks a shape: where it is, what was expected there, what was found. */
export interface Problem {
  /** Keys and indices from the checked value down to the bad one ([] for the value itself). */
  path: (string | number)[];
  /** What the shape wanted there, in words ("a number", "one of pending, queued"). */
  expected: string;
  /** What was there (undefined: the field is missing). */
  found: unknown;
}

/** A rule for one value, carrying the type of the values that pass it. */
export interface Shape<T> {
  /** What the shape wants, in words. */
  readonly expected: string;
  /** null when `v` fits, else the first problem (its path relative to `v`). */
  readonly test: (v: unknown) => Problem | null;
  /** Type-only: the type the shape describes. */
  readonly [TYPE]?: T;
}

/** A field rule that may be absent from its object (see `optional`). */
export interface OptionalShape<T> extends Shape<T> {
  readonly optional: true;
}

/** The TypeScript type a shape describes. */
export type Infer<S> = S extends Shape<infer T> ? T : never;

/** A shape from a predicate: the building block of the leaf shapes below. */
export function leaf<T>(expected: string, ok: (v: unknown) => boolean): Shape<T> {
  return { expected, test: (v) => (ok(v) ? null : { path: [], expected, found: v }) };
}

/** Any string. */
export const str: Shape<string> = leaf('a string', (v) => typeof v === 'string');
/** A finite number (NaN and the infinities are no measurements). */
export const num: Shape<number> = leaf('a number', (v) => typeof v === 'number' && Number.isFinite(v));
/** A safe integer (pids, byte counts, milliseconds). */
export const int: Shape<number> = leaf('an integer', (v) => typeof v === 'number' && Number.isSafeInteger(v));
/** true or false. */
export const bool: Shape<boolean> = leaf('true or false', (v) => typeof v === 'boolean');

/** Exactly one of the given primitive values ("version": 1). */
export function literal<const L extends string | number | boolean>(...values: L[]): Shape<L> {
  const expected =
    values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return leaf(expected, (v) => (values as unknown[]).includes(v));
}

/** One of a list of strings declared elsewhere (the job states, the verdict classes). */
export function oneOf<const L extends string>(values: readonly L[]): Shape<L> {
  return leaf(`one of ${values.join(', ')}`, (v) => typeof v === 'string' && (values as readonly string[]).includes(v));
}

/** The shape, or null. */
export function nullable<T>(s: Shape<T>): Shape<T | null> {
  const expected = `${s.expected} or null`;
  return {
    expected,
    test(v) {
      if (v === null) return null;
      const p = s.test(v);
      // the value itself is wrong (not one deep inside it): say that null would have done too
      if (p !== null && p.path.length === 0) p.expected = expected;
      return p;
    },
  };
}

/** A field that may be left out of its object; when present it must fit `s`. */
export function optional<T>(s: Shape<T>): OptionalShape<T> {
  return { expected: s.expected, optional: true, test: (v) => (v === undefined ? null : s.test(v)) };
}

/** An array whose every element fits `s`. */
export function arr<T>(s: Shape<T>): Shape<T[]> {
  const expected = `a list of ${s.expected}`;
  return {
    expected,
    test(v) {
      if (!Array.isArray(v)) return { path: [], expected, found: v };
      for (let i = 0; i < v.length; i++) {
        const p = s.test(v[i]);
        if (p !== null) return within(i, p);
      }
      return null;
    },
  };
}

/** An object used as a map: any keys, every value fitting `s` (the job's --env). */
export function record<T>(s: Shape<T>): Shape<Record<string, T>> {
  const expected = `an object of ${s.expected}`;
  return {
    expected,
    test(v) {
      if (!isObject(v)) return { path: [], expected, found: v };
      for (const key of Object.keys(v)) {
        const p = s.test(v[key]);
        if (p !== null) return within(key, p);
      }
      return null;
    },
  };
}

type Fields = Record<string, Shape<unknown>>;
type OptionalKeys<F> = { [K in keyof F]: F[K] extends OptionalShape<unknown> ? K : never }[keyof F];
type Flat<T> = { [K in keyof T]: T[K] } & {};
/** The object type of a field list: optional shapes become optional keys. */
export type ObjOf<F extends Fields> = Flat<
  { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> }
>;

/**
 * An object (not an array, not null) with these fields, checked in the order given. Fields the
 * shape does not name are allowed and kept: a newer writer may add some.
 */
export function obj<F extends Fields>(fields: F): Shape<ObjOf<F>> {
  const entries = Object.entries(fields);
  const expected = 'an object';
  return {
    expected,
    test(v) {
      if (!isObject(v)) return { path: [], expected, found: v };
      for (const [key, s] of entries) {
        const p = s.test(v[key]);
        if (p !== null) return within(key, p);
      }
      return null;
    },
  };
}

/** Either the value, typed, or the first problem with it. */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: Problem };

/** Checks `v` against `s`: the value itself (typed) when it fits, else the first problem. */
export function check<T>(s: Shape<T>, v: unknown): Checked<T> {
  const problem = s.test(v);
  return problem === null ? { ok: true, value: v as T } : { ok: false, problem };
}

/** `v` typed when it fits `s`, else null: for untrusted files, where a wrong shape is no evidence. */
export function fitOrNull<T>(s: Shape<T>, v: unknown): T | null {
  return s.test(v) === null ? (v as T) : null;
}

/** Parses one JSON text and checks it; null for empty or torn text and for the wrong shape. */
export function parseJsonAs<T>(s: Shape<T>, text: string | undefined): T | null {
  if (text === undefined || text.trim() === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return fitOrNull(s, v);
}

/** A problem's path written with dots ("limits.memoryBytes", "history.0.at"; "" for the value itself). */
export function pathText(p: Problem): string {
  return p.path.join('.');
}

/**
 * One sentence about a problem, for a user who must find and fix the field:
 * 'field "limits.timeoutS" is missing', 'field "state" is not one of … ("flying")'.
 */
export function problemText(p: Problem): string {
  if (p.path.length === 0) return `it is not ${p.expected}`;
  const where = `field "${pathText(p)}"`;
  return p.found === undefined ? `${where} is missing` : `${where} is not ${p.expected} (${shown(p.found)})`;
}

/** A found value as a short JSON excerpt (40 characters at most). */
export function shown(v: unknown): string {
  return String(JSON.stringify(v)).slice(0, 40);
}

/** Compile-time type equality: `Expect<Equal<A, B>>` fails to compile unless A and B are the same type. */
export type Equal<A, B> = (<G>() => G extends A ? 1 : 2) extends <G>() => G extends B ? 1 : 2 ? true : false;
/** Holds only `true` (with Equal: an assertion checked by the compiler). */
export type Expect<T extends true> = T;

function within(key: string | number, p: Problem): Problem {
  p.path.unshift(key);
  return p;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
