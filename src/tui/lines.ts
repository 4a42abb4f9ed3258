/**
 * The watch screen as rows of colored text segments, computed from the state, the clock and the
 * terminal size. Pure, so the layout (what fits in 80x24, which figure goes where) is decided and
 * tested here; the Ink components only draw these rows.
 */
import { formatBytes, formatDuration, formatPercent, parseIso, printableLine } from '../core/format.js';
import { jobDurationMs } from '../core/job.js';
import { estimateText, gpuText } from '../core/queue.js';
import { jobFigures, type PeakKey } from '../core/peaks.js';
import { durationText, exitText, levelTone, type Tone, tone } from '../core/present.js';
import type { Job, Sample } from '../core/types.js';
import { bar, sparkline, wrapText } from './format.js';
import { gpuMemOf, isDone, type ConnectionState, type WatchState } from './model.js';

/** A run of text with one style; its tone becomes a colour in Line.tsx. */
export interface Segment {
  text: string;
  tone?: Tone;
  bold?: boolean;
  dim?: boolean;
  inverse?: boolean;
}

/** One terminal row. */
export type Row = Segment[];

const seg = (text: string, style: Omit<Segment, 'text'> = {}): Segment => ({ text, ...style });

/** Total visible length of a row. */
export function rowLength(row: Row): number {
  return row.reduce((n, s) => n + s.text.length, 0);
}

/** Cuts a row to `width` characters, marking the cut with '…'. */
export function fitRow(row: Row, width: number): Row {
  const w = Math.max(0, width);
  if (rowLength(row) <= w) return row;
  const out: Row = [];
  let left = Math.max(0, w - 1);
  for (const s of row) {
    if (left <= 0) break;
    const text = s.text.slice(0, left);
    out.push({ ...s, text });
    left -= text.length;
  }
  if (w > 0) out.push(seg('…', { dim: true }));
  return out;
}

function stateSegment(job: Job, ending: boolean): Segment {
  if (isDone(job)) return seg(`● done · ${job.verdict.class}`, { tone: tone(job.verdict.class), bold: true });
  if (ending && job.state === 'running')
    return seg('● ending · collecting the verdict', { tone: 'waiting', bold: true });
  return seg(`● ${job.state}`, { tone: tone(job.state), bold: true });
}

/**
 * Seconds the job has run, as every command counts it (core/job `jobDurationMs`: the
 * supervisor's start to its end, or to now), or null before it started.
 */
export function elapsedS(job: Job, now: number): number | null {
  const ms = jobDurationMs(job, now);
  return ms === null ? null : ms / 1000;
}

/**
 * The figure a finished job's page shows for one peak (the one recorded with its verdict), or
 * null while it runs or when none was recorded: the live view then shows what it sampled.
 */
function recordedPeak(job: Job | null, key: PeakKey, now: number): number | null {
  if (!isDone(job)) return null;
  return jobFigures(job, now).peaks?.find((p) => p.key === key)?.value ?? null;
}

/** The header rows: who and where, then elapsed time against the timeout (a queued job: its place, then why). */
export function headerRows(job: Job | null, now: number, width: number, ending = false): Row[] {
  const w = Math.max(1, width - 1);
  if (job === null) return [[seg('gpuq watch', { bold: true }), seg('  waiting for the job…', { dim: true })], []];
  const gpus = gpuText(job);
  const first: Row = [
    stateSegment(job, ending),
    seg('  '),
    seg(job.id, { bold: true }),
    seg('  '),
    seg(printableLine(job.name)),
    seg(`  node ${job.node}`, { tone: 'info' }),
    seg(`  ${gpus}`, { tone: 'accent' }),
  ];
  if (job.competition) first.push(seg(`  ${job.competition}`, { dim: true }));

  const timeout = job.limits.timeoutS;
  const el = elapsedS(job, now);
  let second: Row;
  if (el === null) {
    const since = parseIso(job.createdAt);
    const waited = since === null ? '' : ` for ${formatDuration((now - since) / 1000, 'column')}`;
    const q = job.state === 'queued' ? job.queue : null;
    second = [
      seg(`${q ? `queued, position ${q.position} on ${job.node},` : job.state}${waited}`, {
        dim: q === null,
        tone: q ? 'waiting' : undefined,
      }),
      seg(` · timeout ${formatDuration(timeout, 'column')}`, { dim: true }),
    ];
    // While queued: why, and when it should start (README, "The GPU queue").
    if (q)
      return [
        fitRow(first, w),
        fitRow(second, w),
        fitRow([seg(printableLine(`${q.reason} · starts ${estimateText(q.estimatedStart, now)}`), { dim: true })], w),
      ];
  } else {
    const frac = timeout > 0 ? el / timeout : 0;
    // A finished job's duration reads as on every other page; a running one ticks in columns.
    const shown = isDone(job) ? `ran ${durationText(el * 1000)}` : `elapsed ${formatDuration(el, 'column')}`;
    const head = `${shown} / ${formatDuration(timeout, 'column')} `;
    const pct = ` ${formatPercent(frac).padStart(4)}`;
    const tail = isDone(job) ? '' : `  ${formatDuration(Math.max(0, timeout - el), 'column')} left`;
    const barW = Math.max(5, Math.min(40, w - head.length - pct.length - tail.length));
    second = [seg(head), seg(bar(frac, barW), { tone: levelTone(frac) }), seg(pct), seg(tail, { dim: true })];
  }
  return [fitRow(first, w), fitRow(second, w)];
}

// Column widths of a resource row: label, figure, bar, percent, peak, then the sparkline.
const COL_LABEL = 7;
const COL_VALUE = 20;
const COL_BAR = 12;
const COL_PCT = 5;
const COL_PEAK = 15;
const FIXED = COL_LABEL + COL_VALUE + 1 + COL_BAR + COL_PCT + 2 + COL_PEAK + 2;

interface Gauge {
  label: string;
  value: string;
  /** 0..1 against a limit, or null where there is none. */
  fraction: number | null;
  /** Text in the bar column when there is no fraction. */
  noBar?: string;
  pct?: string;
  peak: string;
  history: number[];
  historyMax?: number;
}

function gaugeRow(g: Gauge, sparkW: number): Row {
  const row: Row = [seg(g.label.padEnd(COL_LABEL), { bold: true }), seg(`${g.value.padEnd(COL_VALUE)} `)];
  if (g.fraction !== null) {
    row.push(seg(bar(g.fraction, COL_BAR), { tone: levelTone(g.fraction) }));
    row.push(seg((g.pct ?? formatPercent(g.fraction)).padStart(COL_PCT), { tone: levelTone(g.fraction) }));
  } else {
    row.push(seg((g.noBar ?? '').padEnd(COL_BAR + COL_PCT), { dim: true }));
  }
  row.push(seg(`  ${g.peak.padEnd(COL_PEAK)}`, { dim: true }));
  if (sparkW > 0 && g.history.length > 0)
    row.push(seg(`  ${sparkline(g.history, sparkW, g.historyMax)}`, { tone: 'info' }));
  return row;
}

/** The resource rows: RSS, CPU, processes, each GPU, then the job folder and counters. */
export function resourceRows(state: WatchState, now: number, width: number): Row[] {
  const w = Math.max(1, width - 1);
  const last: Sample | undefined = state.samples[state.samples.length - 1];
  const peaks = state.peaks;
  if (last === undefined || peaks === null) {
    return [
      [seg('resources'.padEnd(COL_LABEL + 4), { bold: true }), seg('waiting for the first sample…', { dim: true })],
    ];
  }
  const limits = state.job?.limits ?? null;
  const sparkW = Math.max(0, Math.min(state.options.historySize, w - FIXED));
  const hist = (f: (s: Sample) => number): number[] => state.samples.map(f);
  const rows: Row[] = [];

  const mem = limits?.memoryBytes ?? null;
  const job = state.job;
  const memPeak = recordedPeak(job, 'memory', now) ?? peaks.rssBytes;
  const tasksPeak = recordedPeak(job, 'tasks', now) ?? peaks.threads;
  const folderPeak = recordedPeak(job, 'folder', now) ?? peaks.folderBytes;
  rows.push(
    gaugeRow(
      {
        label: 'RSS',
        value: mem
          ? `${formatBytes(last.rssBytes, 'column')} / ${formatBytes(mem, 'column')}`
          : formatBytes(last.rssBytes, 'column'),
        fraction: mem ? last.rssBytes / mem : null,
        noBar: 'no limit',
        peak: `peak ${formatBytes(memPeak, 'column')}`,
        history: hist((s) => s.rssBytes),
      },
      sparkW,
    ),
  );
  rows.push(
    gaugeRow(
      {
        label: 'CPU',
        value: formatPercent(last.cpuPct / 100),
        fraction: null,
        noBar: '',
        peak: `peak ${formatPercent(peaks.cpuPct / 100)}`,
        history: hist((s) => s.cpuPct),
      },
      sparkW,
    ),
  );
  const pids = limits?.pids ?? null;
  rows.push(
    gaugeRow(
      {
        // Processes and threads together: what --pids counts.
        label: 'tasks',
        value: `${pids ? `${last.threads} / ${pids}` : String(last.threads)} · ${last.procs} proc${last.procs === 1 ? '' : 's'}`,
        fraction: pids ? last.threads / pids : null,
        noBar: 'no limit',
        peak: `peak ${tasksPeak}`,
        history: hist((s) => s.threads),
      },
      sparkW,
    ),
  );
  for (const g of last.gpu ?? []) {
    const util = g.utilPct;
    rows.push(
      gaugeRow(
        {
          label: `GPU${g.index}`,
          value: `mem ${formatBytes(g.memUsedBytes, 'column')}`,
          fraction: util === null ? null : util / 100,
          noBar: 'util ?',
          peak: g.jobMemBytes === null ? '' : `job ${formatBytes(g.jobMemBytes, 'column')}`,
          history: hist((s) => s.gpu?.find((x) => x.index === g.index)?.utilPct ?? 0),
          historyMax: 100,
        },
        sparkW,
      ),
    );
  }
  const ago = Math.max(0, (now - last.t) / 1000);
  const gpuPeak =
    peaks.gpuMemBytes === null || gpuMemOf(last) === null
      ? ''
      : ` · GPU mem peak ${formatBytes(peaks.gpuMemBytes, 'column')}`;
  rows.push([
    seg('disk'.padEnd(COL_LABEL), { bold: true }),
    seg(`${formatBytes(last.folderBytes, 'column')} (peak ${formatBytes(folderPeak, 'column')})`),
    seg(` · open files ${last.openFiles}${gpuPeak}`, { dim: true }),
    seg(` · sampled ${formatDuration(ago, 'column')} ago`, {
      dim: true,
      ...(ago > 30 ? { tone: 'warn' as const } : {}),
    }),
  ]);
  return rows.map((r) => fitRow(r, w));
}

/** The title row above the log: filter, line count, scroll position. */
export function logTitleRow(state: WatchState, shown: { total: number; below: number }, width: number): Row {
  const w = Math.max(1, width - 1);
  const parts = [`log · ${state.ui.filter}`, `${shown.total} line${shown.total === 1 ? '' : 's'}`];
  if (shown.below > 0) parts.push(`${shown.below} newer below (End follows)`);
  else parts.push('following');
  if (state.dropped > 0) parts.push(`${state.dropped} older dropped`);
  const text = `── ${parts.join(' · ')} `;
  return fitRow([seg(text.padEnd(w, '─'), { dim: true })], w);
}

/** The rows inside the verdict banner: class and exit, the summary, the first hint. */
export function verdictRows(job: Job, width: number): Row[] {
  const v = job.verdict;
  if (!v) return [];
  const inner = Math.max(1, width - 5); // border and padding
  const mark = v.class === 'succeeded' ? '✔' : '✘';
  const cls = v.cause ? `${v.class} (${v.cause})` : v.class;
  const hint: Row = v.hints[0]
    ? [seg('hint: ', { bold: true }), seg(v.hints[0]), seg('  · d: full diagnosis', { dim: true })]
    : [seg('d: full diagnosis', { dim: true })];
  return [
    fitRow([seg(`${mark} ${cls}`, { tone: tone(v.class), bold: true }), seg(`  ${exitText(v)}`)], inner),
    fitRow([seg(v.summary)], inner),
    fitRow(hint, inner),
  ];
}

/** Seconds until the next reconnect try, counted down from when the event arrived. */
export function retryIn(conn: Extract<ConnectionState, { status: 'reconnecting' }>, now: number): number {
  if (conn.at === null) return Math.ceil(conn.retryInS);
  return Math.max(0, Math.ceil(conn.retryInS - (now - conn.at) / 1000));
}

function connectionSegment(conn: ConnectionState, now: number): Segment {
  switch (conn.status) {
    case 'connecting':
      return seg('◌ connecting…', { tone: 'waiting' });
    case 'connected':
      return seg('● connected', { tone: 'ok' });
    case 'reconnecting':
      return seg(`↻ reconnecting in ${retryIn(conn, now)} s (${conn.reason})`, { tone: 'warn' });
    case 'ended':
      return conn.error === null
        ? seg('■ finished', { dim: true })
        : seg(`■ stream ended: ${conn.error}`, { tone: 'bad' });
  }
}

/** The key help that fits the moment. */
export function keyHelp(state: WatchState): string {
  if (state.ui.diagnosis.open) return 'd/Esc close · ↑↓ PgUp/PgDn scroll · q leave';
  const done = isDone(state.job);
  return done
    ? 'q leave · d diagnosis · s filter · ↑↓ PgUp/PgDn scroll'
    : 'q leave · c cancel · s filter · ↑↓ PgUp/PgDn scroll';
}

/** The bottom row: the cancel prompt, or connection, notice and key help. */
export function statusRow(state: WatchState, now: number, width: number): Row {
  const w = Math.max(1, width - 1);
  if (state.ui.cancel === 'confirm' && state.job) {
    return fitRow([seg(`cancel job ${state.job.id}? y/n`, { tone: 'warn', bold: true, inverse: true })], w);
  }
  const left: Row = [connectionSegment(state.connection, now)];
  if (state.ui.notice) left.push(seg(`  ${state.ui.notice}`, { tone: 'warn' }));
  const help = keyHelp(state);
  const room = w - rowLength(left);
  if (room >= help.length + 2) return [...left, seg(' '.repeat(room - help.length)), seg(help, { dim: true })];
  return fitRow(left, w);
}

/** Heights of the screen's parts for a terminal of `height` rows. */
export interface ScreenLayout {
  header: Row[];
  resources: Row[];
  banner: Row[] | null;
  logRows: number;
  diagnosisRows: number;
}

/** Banner height: its rows plus the border. */
export const BANNER_BORDER = 2;

/**
 * Splits the terminal's rows between the parts, leaving the last row free (ink clears the whole
 * screen on every frame when the output is as tall as the terminal). The log and the diagnosis
 * panel get what is left, at least 3 rows.
 */
export function screenLayout(state: WatchState, now: number, width: number, height: number): ScreenLayout {
  const budget = Math.max(8, height - 1);
  const header = headerRows(state.job, now, width, state.ending);
  const resources = resourceRows(state, now, width);
  const banner = isDone(state.job) ? verdictRows(state.job, width) : null;
  const bannerH = banner ? banner.length + BANNER_BORDER : 0;
  const status = 1;
  const title = 1;
  const logRows = Math.max(3, budget - header.length - resources.length - bannerH - title - status);
  const diagnosisRows = Math.max(3, budget - header.length - title - status);
  return { header, resources, banner, logRows, diagnosisRows };
}

/** The diagnosis text wrapped to the panel's width. */
export function diagnosisLines(state: WatchState, width: number): string[] {
  const d = state.ui.diagnosis;
  const w = Math.max(10, width - 1);
  if (d.status === 'ready' && d.text !== null) return wrapText(d.text, w);
  if (d.status === 'error') return wrapText(`could not load the diagnosis: ${d.error ?? 'unknown error'}`, w);
  return ['loading the diagnosis…'];
}

/** The title row of the diagnosis panel, with the shown range. */
export function diagnosisTitleRow(first: number, shown: number, total: number, width: number): Row {
  const w = Math.max(1, width - 1);
  const range = total > shown ? ` · lines ${first + 1}-${first + shown} of ${total}` : '';
  const text = `── diagnosis${range} · ↑↓ scroll · d/Esc close `;
  return fitRow([seg(text.padEnd(w, '─'), { bold: true })], w);
}
