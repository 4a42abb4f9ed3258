/**
 * Human renderings of jobs for the terminal. Pure string building.
 */
import { formatBytes } from '../core/format.js';
import type { Peak } from '../core/peaks.js';
import type { Job, Verdict } from '../core/types.js';
import type { Style } from './style.js';

/** "3s", "4m10s", "2h05m", "3d4h": compact, for tables. */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** The state column: the verdict class once done. */
export function stateLabel(job: Job): string {
  return job.state === 'done' && job.verdict ? job.verdict.class : job.state;
}

/** Colors a state label by how it went. */
export function paintState(style: Style, label: string): string {
  const c = style.c;
  if (label === 'succeeded') return c.green(label);
  if (label === 'running' || label === 'grading') return c.cyan(label);
  if (label === 'pending' || label === 'queued') return c.yellow(label);
  if (label === 'cancelled') return c.gray(label);
  return c.red(label);
}

/** How long a job ran (or has been running). */
export function jobDuration(job: Job, now: Date): string {
  if (!job.startedAt) return '-';
  const end = job.endedAt ? Date.parse(job.endedAt) : now.getTime();
  return shortDuration(end - Date.parse(job.startedAt));
}

function pad(text: string, width: number, painted?: string): string {
  const p = painted ?? text;
  return text.length >= width ? p : p + ' '.repeat(width - text.length);
}

/** The `gpuq list` table. */
export function renderTable(jobs: Job[], now: Date, style: Style): string {
  const rows = jobs.map((j) => ({
    id: j.id,
    name: j.name.length > 28 ? `${j.name.slice(0, 27)}…` : j.name,
    node: j.node,
    state: stateLabel(j),
    age: shortDuration(now.getTime() - Date.parse(j.createdAt)),
    duration: jobDuration(j, now),
  }));
  const head = { id: 'ID', name: 'NAME', node: 'NODE', state: 'STATE', age: 'AGE', duration: 'DURATION' };
  const w = (k: keyof typeof head) => Math.max(head[k].length, ...rows.map((r) => r[k].length));
  const line = (r: typeof head, painted = false) =>
    [
      pad(r.id, w('id')),
      pad(r.name, w('name')),
      pad(r.node, w('node')),
      pad(r.state, w('state'), painted ? paintState(style, r.state) : undefined),
      pad(r.age, w('age')),
      r.duration,
    ].join('  ');
  return [style.c.bold(line(head)), ...rows.map((r) => line(r, true))].join('\n');
}

/** One-line verdict: "abc12345 timeout (exit 137): Killed after …". */
export function verdictLine(job: Job, style: Style): string {
  const v = job.verdict as Verdict | null;
  if (!v) return `${job.id} ${job.state}`;
  const code = v.signal ? `${v.signal}` : v.exitCode !== null ? `exit ${v.exitCode}` : 'no exit status';
  return `${job.id} ${paintState(style, v.class)} (${code}): ${v.summary}`;
}

function fmtBytes(n: number | null): string {
  return n === null ? 'unlimited' : formatBytes(n);
}

function fmtSeconds(s: number | null): string {
  return s === null ? 'unlimited' : shortDuration(s * 1000);
}

/** Evidence lines that the peaks section does not already say (a peak can be evidence too). */
export function evidenceBesidesPeaks(evidence: readonly string[], peaks: readonly Peak[] | null | undefined): string[] {
  const said = new Set((peaks ?? []).map((p) => p.text));
  return evidence.filter((e) => !said.has(e));
}

/**
 * The `gpuq show` page; `peaks` (from the job folder, when it could be read) adds the resource
 * peaks against limits.
 */
export function renderJob(job: Job & { peaks?: Peak[] | null }, now: Date, style: Style): string {
  const c = style.c;
  const l = job.limits;
  const lines = [
    `${c.bold('Job')}        ${job.id}  ${job.name}`,
    `${c.bold('State')}      ${paintState(style, stateLabel(job))}`,
    `${c.bold('Node')}       ${job.node}${job.gpus.length ? `  GPU ${job.gpus.join(',')}` : ''}`,
    `${c.bold('File')}       ${job.file}`,
  ];
  if (job.competition) lines.push(`${c.bold('Competition')} ${job.competition}`);
  if (job.args.length) lines.push(`${c.bold('Args')}       ${JSON.stringify(job.args)}`);
  if (Object.keys(job.env).length) lines.push(`${c.bold('Env')}        ${Object.keys(job.env).join(', ')}`);
  if (job.remote)
    lines.push(
      `${c.bold('Folder')}     ${job.remote.dir}  (supervisor pid ${job.remote.supervisorPid}, job pid ${job.remote.pid})`,
    );
  lines.push(
    `${c.bold('Limits')}     timeout ${fmtSeconds(l.timeoutS)} (grace ${fmtSeconds(l.graceS)}), memory ${fmtBytes(l.memoryBytes)}, pids ${l.pids ?? 'unlimited'}, files ${l.files ?? 'unlimited'}, file size ${fmtBytes(l.fileSizeBytes)}, cpu time ${fmtSeconds(l.cpuTimeS)}, gpus ${l.gpus}`,
    `${c.bold('Created')}    ${job.createdAt}`,
    `${c.bold('Started')}    ${job.startedAt ?? '-'}`,
    `${c.bold('Ended')}      ${job.endedAt ?? '-'}   (ran ${jobDuration(job, now)})`,
    c.bold('History'),
    ...job.history.map((h) => `  ${h.at}  ${h.state}${h.note ? `  ${h.note}` : ''}`),
  );
  if (job.peaks && job.peaks.length > 0) {
    lines.push(c.bold(job.state === 'done' ? 'Peaks' : 'Peaks so far'), ...job.peaks.map((p) => `  ${p.text}`));
  }
  const v = job.verdict;
  if (v) {
    lines.push(`${c.bold('Verdict')}    ${paintState(style, v.class)}${v.cause ? ` (${v.cause})` : ''}: ${v.summary}`);
    for (const e of evidenceBesidesPeaks(v.evidence, job.peaks)) lines.push(`  - ${e}`);
    for (const h of v.hints) lines.push(`  ${c.yellow('hint:')} ${h}`);
  }
  return lines.join('\n');
}
