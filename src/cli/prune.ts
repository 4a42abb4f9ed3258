/**
 * `gpuq prune (--older-than DUR | --keep N) [--dry-run] [--json]`: removes finished jobs' folders
 * on the nodes and their ledger entries; prints what went and the space freed.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { formatBytes, plural, printableLine } from '../core/format.js';
import { parseCountOrZero, parseDuration } from '../core/units.js';
import type { PruneOptions, PruneReport } from '../services/prune.js';
import type { CliApp } from './app.js';

/** The longest age `--older-than` takes: ten years. */
const MAX_AGE_S = 3650 * 86400;

/** Turns the flags into prune options, refusing a prune without a criterion (exit 2). */
export function toPruneOptions(f: { olderThan?: string; keep?: string; dryRun?: boolean }): PruneOptions {
  if (f.olderThan === undefined && f.keep === undefined)
    throw usageError(
      'prune needs --older-than DUR or --keep N (or both): it never removes every job unasked.',
      'For example: gpuq prune --older-than 30d --dry-run',
    );
  return {
    olderThanS: f.olderThan === undefined ? null : parseDuration(f.olderThan, '--older-than', MAX_AGE_S),
    keep: f.keep === undefined ? null : parseCountOrZero(f.keep, '--keep', 1_000_000),
    dryRun: f.dryRun === true,
  };
}

/** The human report: one line per job that went, then the total. */
export function renderPrune(r: PruneReport): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = r.pruned.map((p) => {
    const name = printableLine(p.name);
    const folder =
      p.folder === 'removed' ? formatBytes(p.bytes) : p.folder === 'absent' ? 'folder already gone' : 'no folder';
    return `${verb} ${p.id}  ${name.length > 28 ? `${name.slice(0, 27)}…` : name}  ${p.node}  ${folder}`;
  });
  const programs = r.programBytes > 0 ? ` (and ${formatBytes(r.programBytes)} of kept programs here)` : '';
  lines.push(
    r.pruned.length === 0
      ? 'nothing to prune'
      : `${r.dryRun ? 'would prune' : 'pruned'} ${plural(r.pruned.length, 'job')}, ` +
          `${r.dryRun ? 'freeing' : 'freed'} ${formatBytes(r.freedBytes)} on the nodes${programs}`,
  );
  return lines.join('\n');
}

/** Registers `prune`. */
export function registerPrune(program: Command, app: CliApp): void {
  program
    .command('prune')
    .description("remove finished jobs' folders on the nodes and their ledger entries")
    .option('--older-than <dur>', 'jobs that ended more than this long ago, like 30d or 12h')
    .option('--keep <n>', 'keep the newest N finished jobs (with --older-than: remove only what both allow)')
    .option('--dry-run', 'list what would go, with sizes; remove nothing')
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      '\nA job pending, queued, running or grading is never removed. A job whose node cannot be\n' +
        'reached keeps its folder and its entry, is named on stderr, and the exit code is 3.',
    )
    .action(async (f: { olderThan?: string; keep?: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const opts = toPruneOptions(f);
      const ctx = app.context(cmd);
      const { pruneJobs } = await import('../services/prune.js');
      const r = await pruneJobs(ctx, opts);
      for (const k of r.kept) ctx.out.info(`kept job ${k.id} (node ${k.node}): ${k.reason}.`);
      if (r.active > 0 && !f.json)
        ctx.out.info(`${plural(r.active, 'job')} not finished ${r.active === 1 ? 'was' : 'were'} left alone.`);
      if (f.json) app.printJson(r);
      else app.print(renderPrune(r));
      if (r.kept.some((k) => k.unreachable)) app.exitCode = EXIT.unreachable;
    });
}
