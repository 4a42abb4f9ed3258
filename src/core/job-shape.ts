/**
 * The shape of a job as the ledger stores it. The ledger is a file people can edit and tools can
 * damage; a job with a missing or mistyped field must be refused with its name and the field, not
 * crash `list` three calls later. Built from the shape combinators (core/shape), which are pure and
 * cheap: the check runs on every read of the live file.
 */

import { LIMITS, type LimitKey } from './limits.js';
import {
  arr,
  bool,
  type Equal,
  type Expect,
  type Infer,
  nullable,
  num,
  obj,
  oneOf,
  optional,
  pathText,
  record,
  type Shape,
  shown,
  str,
} from './shape.js';
import { BOUNDARIES, ISOLATIONS, JOB_STATES, type Job, type Limits, VERDICT_CLASSES } from './types.js';

/** The limits in force for a job (base units; null = unlimited), one field per row of the limits table. */
export const limitsShape = obj(
  Object.fromEntries(LIMITS.map((l) => [l.key, l.nullable ? nullable(num) : num])) as {
    [K in LimitKey]: Shape<Limits[K]>;
  },
);

/** A job's verdict, once it is done. */
export const verdictShape = obj({
  class: oneOf(VERDICT_CLASSES),
  cause: nullable(str),
  exitCode: nullable(num),
  signal: nullable(str),
  timedOut: bool,
  summary: str,
  evidence: arr(str),
  hints: arr(str),
});

/** A job as the ledger stores it and `--json` prints it (unknown extra fields are kept). */
export const jobShape = obj({
  id: str,
  name: str,
  file: str,
  node: str,
  gpus: arr(num),
  competition: nullable(str),
  state: oneOf(JOB_STATES),
  isolation: oneOf(ISOLATIONS),
  image: nullable(str),
  limits: limitsShape,
  env: record(str),
  args: arr(str),
  createdAt: str,
  startedAt: nullable(str),
  endedAt: nullable(str),
  history: arr(obj({ state: oneOf(JOB_STATES), at: str, note: nullable(str) })),
  remote: nullable(
    obj({
      dir: str,
      supervisorPid: nullable(num),
      pid: nullable(num),
      bootId: nullable(str),
      boundary: optional(nullable(oneOf(BOUNDARIES))),
    }),
  ),
  verdict: nullable(verdictShape),
});

// The shape and the Job interface of core/types describe the same thing: the compiler checks it.
export type JobShapeMatchesJob = Expect<Equal<Infer<typeof jobShape>, Job>>;
export type LimitsShapeMatchesLimits = Expect<Equal<Infer<typeof limitsShape>, Limits>>;

/**
 * Why a value read from the ledger is not a usable job ('field "limits.timeoutS" is missing'),
 * or null when it is one. Callers name the file and the job around it.
 */
export function jobShapeProblem(value: unknown): string | null {
  const p = jobShape.test(value);
  if (p === null) return null;
  if (p.path.length === 0) return 'it is not an object';
  const field = `field "${pathText(p)}"`;
  return p.found === undefined ? `${field} is missing` : `${field} has a value of the wrong kind (${shown(p.found)})`;
}
