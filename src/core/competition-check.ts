/**
 * `gpuq competitions check`: what one node's answer to the check (node/commands
 * competitionCheckCommand) says about each competition, and the problems worth a line each.
 * Pure: text in, records out.
 */
import { formatBytes, plural, printableLine } from './format.js';

/** A competition as the check needs it (the config's fields). */
export interface CheckTarget {
  name: string;
  data: string | null;
  answers: string | null;
  grader: readonly string[] | null;
}

/**
 * A data or answers folder on the node: `unset` where the config names none; `missing`, `notdir`
 * (something else is there), `unreadable` (gpuq's account cannot list it) or `ok`, with its
 * fingerprint (templates/fingerprint.py) when it could be taken.
 */
export interface FolderCheck {
  path: string | null;
  status: 'unset' | 'ok' | 'missing' | 'notdir' | 'unreadable';
  fingerprint: string | null;
  files: number | null;
  bytes: number | null;
  /** Why there is no fingerprint of a folder that is there (one line), or null. */
  error: string | null;
}

/**
 * The grader's program (its first argument): found on the node's PATH or at its path and
 * executable (`ok`, with where), `missing`, `notexec`; `unset` where the config names no grader.
 * `missingFiles`: other arguments that are absolute paths and do not exist (the grader's script).
 */
export interface GraderCheck {
  command: string[] | null;
  status: 'unset' | 'ok' | 'missing' | 'notexec';
  resolved: string | null;
  missingFiles: string[];
}

/** One competition on one node (part of the `--json` shape of `gpuq competitions check`). */
export interface CompetitionCheck {
  name: string;
  data: FolderCheck;
  answers: FolderCheck;
  grader: GraderCheck;
  /** One line per problem, for the submitter or the operator; empty when all is well. */
  problems: string[];
}

const DIR_STATES = ['ok', 'missing', 'notdir', 'unreadable'] as const;

/** The most characters of a line from the node that a record keeps. */
const LINE_MAX = 1000;

function clean(text: string): string {
  const t = printableLine(text);
  return t.length > LINE_MAX ? `${t.slice(0, LINE_MAX)}…` : t;
}

/** A fingerprint record as fingerprint.py prints it, checked field by field. */
interface FingerprintRecord {
  fingerprint: string | null;
  files: number;
  bytes: number;
  error: string | null;
}

function fingerprintRecord(v: unknown): FingerprintRecord | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const count = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : 0);
  const fp = typeof o.fingerprint === 'string' && /^sha256:[0-9a-f]{64}$/.test(o.fingerprint) ? o.fingerprint : null;
  return {
    fingerprint: fp,
    files: count(o.files),
    bytes: count(o.bytes),
    error: typeof o.error === 'string' ? clean(o.error) : fp === null ? 'no fingerprint' : null,
  };
}

/** A configured folder as the node expands it ("~/x" under the home the node printed). */
export function expandHome(path: string, home: string | null): string {
  if (home === null) return path;
  if (path === '~') return home;
  return path.startsWith('~/') ? `${home.replace(/\/+$/, '')}/${path.slice(2)}` : path;
}

/**
 * Reads the check's answer (lines `home H`, `dir I data|answers STATE`, `grader I STATE [WHERE]`,
 * `garg I J missing`, `python none`, `fp-timeout`, `fp JSON`) into one record per target, in
 * order. Lines it does not know are ignored; what a line did not say stays unknown (a folder
 * whose line is missing counts as missing).
 */
export function parseCompetitionCheck(
  out: string,
  targets: readonly CheckTarget[],
  fingerprintTimeoutS: number,
): CompetitionCheck[] {
  let home: string | null = null;
  let noPython = false;
  let fpTimeout = false;
  let fps: Record<string, unknown> | null = null;
  const dirs = new Map<string, FolderCheck['status']>();
  const graders = new Map<number, { status: GraderCheck['status']; resolved: string | null }>();
  const missingArgs = new Map<number, number[]>();
  for (const line of out.split('\n')) {
    const sp = line.indexOf(' ');
    const key = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    if (key === 'home' && rest.startsWith('/')) home = rest;
    else if (key === 'python' && rest === 'none') noPython = true;
    else if (key === 'fp-timeout') fpTimeout = true;
    else if (key === 'fp') {
      try {
        const v = JSON.parse(rest) as unknown;
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) fps = v as Record<string, unknown>;
      } catch {
        fps = null;
      }
    } else if (key === 'dir') {
      const m = /^(\d+) (data|answers) (\w+)$/.exec(rest);
      if (m && (DIR_STATES as readonly string[]).includes(m[3] as string))
        dirs.set(`${m[1]} ${m[2]}`, m[3] as FolderCheck['status']);
    } else if (key === 'grader') {
      const m = /^(\d+) (ok|missing|notexec)(?: (.*))?$/.exec(rest);
      if (m) graders.set(Number(m[1]), { status: m[2] as GraderCheck['status'], resolved: m[3] ? clean(m[3]) : null });
    } else if (key === 'garg') {
      const m = /^(\d+) (\d+) missing$/.exec(rest);
      if (m) missingArgs.set(Number(m[1]), [...(missingArgs.get(Number(m[1])) ?? []), Number(m[2])]);
    }
  }
  const fpRecords = fps as Record<string, unknown> | null;
  const folder = (i: number, kind: 'data' | 'answers', path: string | null): FolderCheck => {
    if (path === null) return { path, status: 'unset', fingerprint: null, files: null, bytes: null, error: null };
    const status = dirs.get(`${i} ${kind}`) ?? 'missing';
    const f: FolderCheck = { path, status, fingerprint: null, files: null, bytes: null, error: null };
    if (status !== 'ok') return f;
    const rec = fingerprintRecord(fpRecords?.[expandHome(path, home)]);
    if (rec) return { ...f, fingerprint: rec.fingerprint, files: rec.files, bytes: rec.bytes, error: rec.error };
    f.error = noPython
      ? 'no python3 on the node to take its fingerprint'
      : fpTimeout
        ? `its fingerprint took longer than ${fingerprintTimeoutS} s (a first check reads every file; the cache keeps what was read)`
        : 'the node gave no fingerprint';
    return f;
  };
  return targets.map((t, i) => {
    const g = graders.get(i);
    const grader: GraderCheck = {
      command: t.grader ? [...t.grader] : null,
      status: t.grader ? (g?.status ?? 'missing') : 'unset',
      resolved: g?.status === 'ok' ? g.resolved : null,
      missingFiles: (missingArgs.get(i) ?? []).map((j) => t.grader?.[j]).filter((a): a is string => a !== undefined),
    };
    const c: CompetitionCheck = {
      name: t.name,
      data: folder(i, 'data', t.data),
      answers: folder(i, 'answers', t.answers),
      grader,
      problems: [],
    };
    c.problems = checkProblems(c);
    return c;
  });
}

function folderProblem(kind: 'data' | 'answers', f: FolderCheck): string | null {
  const what = `the ${kind} folder ${JSON.stringify(f.path)}`;
  switch (f.status) {
    case 'unset':
    case 'ok':
      return f.status === 'ok' && f.error ? `${what}: no fingerprint: ${f.error}` : null;
    case 'missing':
      return `${what} does not exist`;
    case 'notdir':
      return `${what} is not a folder`;
    case 'unreadable':
      return `${what} cannot be read by gpuq's account`;
  }
}

/** The problems of one competition on one node, one line each (empty: ready to grade there). */
export function checkProblems(c: Omit<CompetitionCheck, 'problems'>): string[] {
  const out: string[] = [];
  for (const kind of ['data', 'answers'] as const) {
    const p = folderProblem(kind, c[kind]);
    if (p) out.push(p);
  }
  const g = c.grader;
  const prog = JSON.stringify(g.command?.[0] ?? '');
  if (g.status === 'unset') out.push('no grader in the config: its jobs are not graded');
  else if (g.status === 'missing')
    out.push(`the grader's program ${prog} is not on the node (not found on PATH or at that path)`);
  else if (g.status === 'notexec') out.push(`the grader's program ${prog} is not executable`);
  for (const f of g.missingFiles) out.push(`the grader's file ${JSON.stringify(f)} does not exist`);
  return out;
}

/** A folder's state in a few words, for the table: "sha256:1a2b3c4d5e6f (3 files, 1.2 KiB)", "missing". */
export function folderText(f: FolderCheck): string {
  if (f.status === 'unset') return '-';
  if (f.status !== 'ok') return f.status === 'notdir' ? 'not a folder' : f.status;
  if (!f.fingerprint) return 'no fingerprint';
  return `${f.fingerprint.slice(0, 19)} (${plural(f.files ?? 0, 'file')}, ${formatBytes(f.bytes ?? 0)})`;
}
