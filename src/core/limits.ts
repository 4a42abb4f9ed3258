/**
 * Every limit a job runs under, declared once. The `Limits` type, the built-in defaults, the
 * config fields (config/schema.ts, config/load.ts), the ledger's shape rule (core/job-shape.ts),
 * the `submit` options and their parsing (cli/submit.ts), the merge of defaults, competition and
 * flags, and the wrapper's template variables (node/wrapper.ts) all derive from LIMITS. Adding a
 * limit is a row here, its enforcement in templates/wrapper.sh and, where it can fire, a rule in
 * the classifier. Pure: no I/O.
 */
import { type AmountKind, MAX_DURATION_S, MAX_SIZE_BYTES, parseAmount } from './units.js';

/** How a limit's value is written into templates/wrapper.sh; null (unlimited) is always `0` there. */
export type WrapperForm =
  /** Seconds with at most three decimals, for `sleep` and `timeout`. */
  | 'seconds'
  /** Whole seconds, rounded up and at least 1, for `ulimit -t`. */
  | 'wholeSeconds'
  /** A whole number as is (bytes, counts). */
  | 'integer';

/** One row of the table. */
export interface LimitSpec {
  /** Field of the `Limits` object (and of a job's `limits` in the ledger), in base units. */
  key: string;
  /** The `submit` option, its value placeholder in the help, and the help text. */
  flag: `--${string}`;
  placeholder: string;
  help: string;
  /** The field name in the config file's `defaults` and a competition's `limits` (CONTRACT.md). */
  config: string;
  /** How people read it (show, the live view's diagnosis): "file size", "cpu time". */
  label: string;
  kind: AmountKind;
  /** Whether null (unlimited) is allowed, in the config and the ledger. */
  nullable: boolean;
  /** The wrapper's template variable, or null where the limit reaches the job otherwise. */
  wrapper: { variable: string; form: WrapperForm } | null;
  /** Inclusive bounds of a given value, in base units. */
  min: number;
  max: number;
  /** What a job gets when neither config nor flags say otherwise. */
  builtin: number | null;
}

/** Every limit, in the order `show`, the ledger JSON and `submit --help` list them. */
export const LIMITS = [
  {
    key: 'timeoutS',
    flag: '--timeout',
    placeholder: 'dur',
    help: 'wall-clock limit, e.g. 90s, 30m, 2h, 1h30m',
    config: 'timeout',
    label: 'timeout',
    kind: 'duration',
    nullable: false,
    wrapper: { variable: 'TIMEOUT_S', form: 'seconds' },
    min: 0.001,
    max: MAX_DURATION_S,
    builtin: 3600,
  },
  {
    key: 'graceS',
    flag: '--grace',
    placeholder: 'dur',
    help: 'time between SIGTERM and SIGKILL',
    config: 'grace',
    label: 'grace',
    kind: 'duration',
    nullable: false,
    wrapper: { variable: 'GRACE_S', form: 'seconds' },
    min: 0.001,
    max: MAX_DURATION_S,
    builtin: 10,
  },
  {
    key: 'memoryBytes',
    flag: '--memory',
    placeholder: 'size',
    help: 'memory limit, e.g. 512m, 2g',
    config: 'memory',
    label: 'memory',
    kind: 'size',
    nullable: true,
    wrapper: { variable: 'MEMORY_BYTES', form: 'integer' },
    min: 1,
    max: MAX_SIZE_BYTES,
    builtin: 16 * 1024 ** 3,
  },
  {
    key: 'pids',
    flag: '--pids',
    placeholder: 'n',
    help: 'most processes and threads at once',
    config: 'pids',
    label: 'pids',
    kind: 'count',
    nullable: true,
    wrapper: { variable: 'PIDS', form: 'integer' },
    min: 1,
    max: 4_194_304,
    builtin: 1024,
  },
  {
    key: 'files',
    flag: '--files',
    placeholder: 'n',
    help: 'most open files',
    config: 'files',
    label: 'files',
    kind: 'count',
    nullable: true,
    wrapper: { variable: 'FILES', form: 'integer' },
    min: 1,
    max: 1_048_576,
    builtin: 4096,
  },
  {
    key: 'fileSizeBytes',
    flag: '--file-size',
    placeholder: 'size',
    help: 'largest file the job may write',
    config: 'fileSize',
    label: 'file size',
    kind: 'size',
    nullable: true,
    wrapper: { variable: 'FILE_SIZE_BYTES', form: 'integer' },
    min: 1,
    max: MAX_SIZE_BYTES,
    builtin: 4 * 1024 ** 3,
  },
  {
    key: 'cpuTimeS',
    flag: '--cpu-time',
    placeholder: 'dur',
    help: 'CPU time limit',
    config: 'cpuTime',
    label: 'cpu time',
    kind: 'duration',
    nullable: true,
    wrapper: { variable: 'CPU_TIME_S', form: 'wholeSeconds' },
    min: 0.001,
    max: MAX_DURATION_S,
    builtin: null,
  },
  {
    key: 'gpus',
    flag: '--gpus',
    placeholder: 'n',
    help: 'GPUs to give the job',
    config: 'gpus',
    label: 'gpus',
    kind: 'count',
    nullable: false,
    // The job sees its GPUs through CUDA_VISIBLE_DEVICES, which the node's choice sets.
    wrapper: null,
    min: 0,
    max: 64,
    builtin: 0,
  },
] as const satisfies readonly LimitSpec[];

type Entry = (typeof LIMITS)[number];
/** A field of `Limits`. */
export type LimitKey = Entry['key'];
/** A limit's field name in the config file. */
export type LimitConfigName = Entry['config'];

/** Limits in force for one job, in base units (seconds, bytes, counts). null = unlimited. */
export type Limits = { [E in Entry as E['key']]: E['nullable'] extends true ? number | null : number };

/** The limits a job gets when neither config nor flags say otherwise (a fresh object). */
export function builtinLimits(): Limits {
  return Object.fromEntries(LIMITS.map((l) => [l.key, l.builtin])) as Limits;
}

/**
 * Parses one limit's value as typed on the command line or in the config, refusing it (exit 2)
 * outside the row's bounds; `what` names the option or the config field in the message.
 */
export function parseLimit(spec: LimitSpec, text: string, what: string): number {
  return parseAmount(spec.kind, text, what, spec);
}

/**
 * The limits given as `submit` options: `given` returns the text given for a row's option,
 * or undefined when it was not given. Bad values are refused naming the option.
 */
export function limitsFromFlags(given: (spec: LimitSpec) => string | undefined): Partial<Limits> {
  const out: Record<string, number> = {};
  for (const spec of LIMITS as readonly LimitSpec[]) {
    const text = given(spec);
    if (text !== undefined) out[spec.key] = parseLimit(spec, text, spec.flag);
  }
  return out as Partial<Limits>;
}

/**
 * The limits set in a config object (`defaults` or a competition's `limits`), keyed by config
 * name, after the schema checked their types. `fieldName` names a row's field in messages.
 */
export function limitsFromConfig(
  raw: Partial<Record<LimitConfigName, string | number | null>>,
  fieldName: (spec: LimitSpec) => string,
): Partial<Limits> {
  const out: Record<string, number | null> = {};
  for (const spec of LIMITS as readonly LimitSpec[]) {
    const v = raw[spec.config as LimitConfigName];
    if (v === undefined) continue;
    out[spec.key] = v === null && spec.nullable ? null : parseLimit(spec, String(v), fieldName(spec));
  }
  return out as Partial<Limits>;
}

/**
 * The limits a job runs under: each layer overrides the one before where it sets a value
 * (flags over the competition's over the config defaults over the built-in ones). Only the
 * table's fields are taken, so a config defaults object with other settings can be a layer.
 */
export function resolveLimits(
  builtin: Limits,
  configDefaults: Partial<Limits> | undefined,
  competition: Partial<Limits> | undefined,
  flags: Partial<Limits> | undefined,
): Limits {
  const out: Record<string, number | null> = {};
  for (const { key } of LIMITS) {
    out[key] = builtin[key];
    for (const layer of [configDefaults, competition, flags]) {
      const v = layer?.[key];
      if (v !== undefined) out[key] = v;
    }
  }
  return out as Limits;
}

/**
 * Fills in, as null (unlimited), a nullable limit that a job recorded before that limit existed
 * lacks, so a ledger written by an older gpuq still reads after a limit is added to the table.
 * Mutates and returns the parsed JSON value; anything that is not a limits object is left alone.
 */
export function fillLimitsAddedLater(limits: unknown): unknown {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) return limits;
  const l = limits as Record<string, unknown>;
  for (const spec of LIMITS as readonly LimitSpec[]) if (spec.nullable && !(spec.key in l)) l[spec.key] = null;
  return limits;
}

/** One limit of a job ready to print: the row's label and kind, and the value (null: unlimited). */
export interface LimitItem {
  key: LimitKey;
  label: string;
  kind: AmountKind;
  value: number | null;
}

/** A job's limits in table order with labels and kinds, for the presentation's limits line. */
export function describeLimits(limits: Limits): LimitItem[] {
  return LIMITS.map((l) => ({ key: l.key, label: l.label, kind: l.kind, value: limits[l.key] }));
}
