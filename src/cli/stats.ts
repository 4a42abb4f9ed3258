/**
 * `gpuq stats [--since DUR] [--json]`: counts by verdict and cause, by node and by competition,
 * and duration percentiles, from the ledger.
 */
import type { Command } from 'commander';
import { formatDuration, plural } from '../core/format.js';
import type { Durations, GroupStats, Stats } from '../core/stats.js';
import { parseDuration } from '../core/units.js';
import type { CliApp } from './app.js';
import { paintState } from './render.js';
import type { Style } from './style.js';

/** The longest period `--since` takes: ten years. */
const MAX_SINCE_S = 3650 * 86400;

const dur = (ms: number | null) => (ms === null ? '-' : formatDuration(ms / 1000, 'column'));

/**
 * A table: columns padded to their widest cell (those in `right` to the right), the header bold;
 * `paintFirst` colours the first column's cells once padded.
 */
function table(
  head: string[],
  rows: string[][],
  style: Style,
  right: ReadonlySet<number> = new Set(),
  paintFirst: (text: string, padded: string) => string = (_t, p) => p,
): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], body: boolean) =>
    cells
      .map((c, i) => {
        const padded = right.has(i)
          ? c.padStart(w[i] as number)
          : i === cells.length - 1
            ? c
            : c.padEnd(w[i] as number);
        return body && i === 0 ? paintFirst(c, padded) : padded;
      })
      .join('  ');
  return [style.c.bold(line(head, false)), ...rows.map((r) => line(r, true))].join('\n');
}

function durationCells(d: Durations): string[] {
  return [dur(d.p50Ms), dur(d.p90Ms), dur(d.maxMs)];
}

function groupTable(title: string, groups: GroupStats[], style: Style): string {
  const rows = groups.map((g) => [
    g.name ?? '(none)',
    String(g.jobs),
    String(g.done),
    String(g.byClass.succeeded ?? 0),
    String(g.done - (g.byClass.succeeded ?? 0)),
    ...durationCells(g.durations),
  ]);
  return table([title, 'JOBS', 'DONE', 'SUCCEEDED', 'OTHER', 'P50', 'P90', 'MAX'], rows, style, new Set([1, 2, 3, 4]));
}

/** The human form of the stats. */
export function renderStats(s: Stats, style: Style): string {
  const period = s.since === null ? 'all time' : `since ${s.since.replace(/\.\d{3}Z$/, 'Z')}`;
  if (s.jobs === 0) return `no jobs (${period})`;
  const activeParts = Object.entries(s.active)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`);
  const out = [
    `${plural(s.jobs, 'job')} (${period}): ${s.done} done${activeParts.length ? `, ${activeParts.join(', ')}` : ''}`,
  ];
  if (s.verdicts.length > 0) {
    out.push(
      '',
      table(
        ['VERDICT', 'JOBS', 'CAUSES'],
        s.verdicts.map((v) => [
          v.class,
          String(v.count),
          v.causes
            .filter((c) => c.cause !== null)
            .map((c) => `${c.cause} ${c.count}`)
            .join(', ') || '-',
        ]),
        style,
        new Set([1]),
        (text, padded) => padded.replace(text, paintState(style, text)),
      ),
    );
  }
  out.push('', groupTable('NODE', s.nodes, style), '', groupTable('COMPETITION', s.competitions, style));
  const d = s.durations;
  out.push(
    '',
    d.count === 0
      ? 'durations: no finished job ran'
      : `durations of ${plural(d.count, 'finished job')}: p50 ${dur(d.p50Ms)}, p90 ${dur(d.p90Ms)}, max ${dur(d.maxMs)}`,
  );
  return out.join('\n');
}

/** Registers `stats`. */
export function registerStats(program: Command, app: CliApp): void {
  program
    .command('stats')
    .description('counts by verdict and cause, by node and by competition; duration percentiles')
    .option('--since <dur>', 'only jobs created in this last period, like 7d or 12h (default: all)')
    .option('--json', 'print the figures as one JSON object (README, "gpuq stats")')
    .action(async (f: { since?: string; json?: boolean }, cmd: Command) => {
      const sinceS = f.since === undefined ? null : parseDuration(f.since, '--since', MAX_SINCE_S);
      const ctx = app.context(cmd);
      const { jobStats } = await import('../services/stats.js');
      const s = await jobStats(ctx, sinceS);
      if (f.json) return app.printJson(s);
      app.print(renderStats(s, app.style(false)));
    });
}
