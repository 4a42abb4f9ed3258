/**
 * The shape check for jobs read back from the ledger. The ledger is a file people can edit and
 * tools can damage; a job with a missing or mistyped field must be refused with its name and the
 * field, not crash `list` three calls later. Pure and cheap (no schema library): it runs on every
 * read of the live file.
 */

import { limitChecks } from './limits.js';
import { ISOLATIONS, JOB_STATES, VERDICT_CLASSES } from './types.js';

type Check = (v: unknown) => boolean;
/** A field's rule: a check, an object of rules, or one of those in a list or allowed to be null. */
type Spec = Check | { fields: Record<string, Spec>; nullable?: true } | { each: Spec };

const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const bool: Check = (v) => typeof v === 'boolean';
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const oneOf =
  (allowed: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const stringMap: Check = (v) => isObject(v) && Object.values(v).every(str);

const JOB: Spec = {
  fields: {
    id: str,
    name: str,
    file: str,
    node: str,
    gpus: { each: num },
    competition: orNull(str),
    state: oneOf(JOB_STATES),
    isolation: oneOf(ISOLATIONS),
    image: orNull(str),
    limits: { fields: limitChecks() },
    env: stringMap,
    args: { each: str },
    createdAt: str,
    startedAt: orNull(str),
    endedAt: orNull(str),
    history: { each: { fields: { state: oneOf(JOB_STATES), at: str, note: orNull(str) } } },
    remote: { nullable: true, fields: { dir: str, supervisorPid: orNull(num), pid: orNull(num), bootId: orNull(str) } },
    verdict: {
      nullable: true,
      fields: {
        class: oneOf(VERDICT_CLASSES),
        cause: orNull(str),
        exitCode: orNull(num),
        signal: orNull(str),
        timedOut: bool,
        summary: str,
        evidence: { each: str },
        hints: { each: str },
      },
    },
  },
};

/** The dotted path of the first value in `v` that breaks `spec` ("" for `v` itself), or null. */
function firstBad(v: unknown, spec: Spec, path: string): string | null {
  if (typeof spec === 'function') return spec(v) ? null : path;
  if ('each' in spec) {
    if (!Array.isArray(v)) return path;
    for (let i = 0; i < v.length; i++) {
      const bad = firstBad(v[i], spec.each, `${path}.${i}`);
      if (bad !== null) return bad;
    }
    return null;
  }
  if (v === null && spec.nullable) return null;
  if (!isObject(v)) return path;
  for (const [key, rule] of Object.entries(spec.fields)) {
    const bad = firstBad(v[key], rule, path ? `${path}.${key}` : key);
    if (bad !== null) return bad;
  }
  return null;
}

/**
 * Why a value read from the ledger is not a usable job ('field "limits.timeoutS" is missing'),
 * or null when it is one. Callers name the file and the job around it.
 */
export function jobShapeProblem(value: unknown): string | null {
  const bad = firstBad(value, JOB, '');
  if (bad === null) return null;
  if (bad === '') return 'it is not an object';
  const shown = lookup(value, bad);
  return shown === undefined
    ? `field "${bad}" is missing`
    : `field "${bad}" has a value of the wrong kind (${JSON.stringify(shown).slice(0, 40)})`;
}

function lookup(v: unknown, path: string): unknown {
  let cur: unknown = v;
  for (const key of path.split('.'))
    cur = isObject(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[key] : undefined;
  return cur;
}
