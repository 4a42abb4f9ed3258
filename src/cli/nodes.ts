/**
 * `gpuq nodes [NAME...]`: each node's reachability, latency, load, memory, disk, inodes, GPUs
 * (and who holds them) and gpuq jobs, probed at once. Exit 3 when any node is unreachable.
 */
import type { Command } from 'commander';
import { dockerLine } from '../core/docker-info.js';
import { EXIT } from '../core/exit-codes.js';
import { formatBytes, formatDuration, printableLine } from '../core/format.js';
import type { NodeLease } from '../core/queue.js';
import type { PartitionSummary } from '../core/slurm.js';
import type { NodeReport } from '../services/nodes.js';
import type { CliApp } from './app.js';
import type { Style } from './style.js';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/**
 * Who holds a GPU's lease, from its lock file (display only): "held by job abc (ann@laptop, since
 * 12:00 UTC, 4m ago)", "held by a process of job abc whose supervisor is gone", "free".
 */
export function leaseText(l: NodeLease, nowMs: number): string {
  if (l.state === 'free') return 'lease free';
  const job = l.job ? `job ${printableLine(l.job)}` : 'a gpuq job';
  if (l.state === 'orphan') return `lease held by a process of ${job} whose supervisor is gone`;
  const since =
    l.sinceMs !== null
      ? `since ${new Date(l.sinceMs).toISOString().slice(11, 19)} UTC, ${formatDuration(Math.max(0, (nowMs - l.sinceMs) / 1000), 'column')} ago`
      : null;
  const who = [l.submitter ? printableLine(l.submitter) : null, since].filter(Boolean).join(', ');
  return `lease held by ${job}${who ? ` (${who})` : ''}`;
}

/** A Slurm partition in one line: its nodes by state, GPUs free, jobs pending and running. */
export function slurmLine(p: PartitionSummary): string {
  const n = p.nodes;
  const states = [
    `${n.idle} idle`,
    `${n.mixed} mixed`,
    `${n.allocated} allocated`,
    `${n.down} down`,
    ...(n.other ? [`${n.other} other`] : []),
  ].join(', ');
  return (
    `Slurm partition ${p.partition === null ? '(default)' : printableLine(p.partition)}: nodes ${states}; ` +
    `GPUs ${p.gpusFree}/${p.gpus} free; jobs ${p.pendingJobs} pending, ${p.runningJobs} running`
  );
}

/** One table row per node plus indented GPU and error lines. */
export function renderNodes(reports: NodeReport[], style: Style, now: Date = new Date()): string {
  const c = style.c;
  const head = ['NODE', 'STATUS', 'LATENCY', 'LOAD', 'MEM FREE', 'DISK FREE', 'INODES FREE', 'JOBS', 'QUEUE', 'GPUS'];
  const rows: string[][] = [];
  const extra = new Map<number, string[]>();
  reports.forEach((r, i) => {
    const s = r.status;
    const load = s?.load ? `${s.load[0].toFixed(2)}${s.cpus ? `/${s.cpus}` : ''}` : '-';
    const mem = s?.memory?.availableBytes != null ? formatBytes(s.memory.availableBytes) : '-';
    const disk = s?.disk ? formatBytes(s.disk.freeBytes) : '-';
    const inodes = s?.inodes && s.inodes.total > 0 ? `${Math.floor((s.inodes.free / s.inodes.total) * 100)}%` : '-';
    const jobs = r.reachable ? String(s?.runningJobs ?? r.ledgerJobs) : r.ledgerJobs > 0 ? `${r.ledgerJobs}?` : '-';
    const gpus = r.slurm
      ? `${r.slurm.gpusFree}/${r.slurm.gpus} free`
      : s?.gpus
        ? String(s.gpus.length)
        : r.configuredGpus.length > 0
          ? `${r.configuredGpus.length} (config)`
          : '-';
    rows.push([
      r.name,
      r.reachable ? 'ok' : 'unreachable',
      r.latencyMs !== null ? `${r.latencyMs} ms` : '-',
      load,
      mem,
      disk,
      inodes,
      jobs,
      r.slurm ? String(r.slurm.pendingJobs) : s?.queue ? String(s.queue.tickets.length) : '-',
      gpus,
    ]);
    const lines: string[] = [];
    if (!r.reachable) {
      lines.push(`  ${c.red(r.error ?? 'unreachable')}`);
      if (r.hint) lines.push(...r.hint.split('\n').map((l) => `  ${c.dim(l)}`));
    }
    if (r.slurm) lines.push(`  ${slurmLine(r.slurm)}`);
    if (s?.boundary === 'none')
      lines.push(
        `  ${c.yellow('no trust boundary:')} jobs here run as gpuq's own account and can write their own verdict (README, "Trust model")`,
      );
    if (r.docker) lines.push(`  ${r.docker.usable ? dockerLine(r.docker) : c.yellow(dockerLine(r.docker))}`);
    for (const g of s?.gpus ?? []) {
      const mem =
        g.memoryUsedBytes !== null && g.memoryTotalBytes !== null
          ? `${formatBytes(g.memoryUsedBytes)}/${formatBytes(g.memoryTotalBytes)}`
          : '?';
      const who =
        g.processes.length === 0
          ? 'free'
          : g.processes
              .map((p) => {
                const job = p.jobId ? ` job ${printableLine(p.jobId)}` : '';
                const held = p.memoryBytes !== null ? ` ${formatBytes(p.memoryBytes)}` : '';
                return `${printableLine(p.user ?? '?')} pid ${p.pid}${job}${held}`;
              })
              .join(', ');
      const lease = s?.queue?.leases.find((l) => l.index === g.index);
      lines.push(
        `  GPU ${g.index} ${printableLine(g.name)}  util ${g.utilizationPct ?? '?'}%  mem ${mem}  ${who}` +
          (lease ? `  ${leaseText(lease, now.getTime())}` : ''),
      );
    }
    // Without nvidia-smi (or a GPU it does not list), the leases alone say who holds what.
    for (const l of s?.queue?.leases ?? [])
      if (!s?.gpus?.some((g) => g.index === l.index)) lines.push(`  GPU ${l.index}  ${leaseText(l, now.getTime())}`);
    const tickets = s?.queue?.tickets ?? [];
    if (tickets.length > 0) {
      const shown = tickets
        .slice(0, 5)
        .map(
          (t) => `${t.jobId} (${t.need} GPU${t.need === 1 ? '' : 's'}${t.priority ? `, priority ${t.priority}` : ''})`,
        );
      lines.push(`  queue: ${shown.join(', ')}${tickets.length > 5 ? `, and ${tickets.length - 5} more` : ''}`);
    }
    extra.set(i, lines);
  });
  const widths = head.map((h, col) => Math.max(h.length, ...rows.map((row) => (row[col] as string).length)));
  const line = (cells: string[]) =>
    cells.map((cell, col) => (col === cells.length - 1 ? cell : pad(cell, widths[col] as number))).join('  ');
  const out = [c.bold(line(head))];
  rows.forEach((row, i) => {
    const painted = line(row).replace(row[1] as string, (m) => (m === 'ok' ? c.green(m) : c.red(m)));
    out.push(painted, ...(extra.get(i) ?? []));
  });
  return out.join('\n');
}

/** Registers `nodes`. */
export function registerNodes(program: Command, app: CliApp): void {
  program
    .command('nodes')
    .description('each node: reachable, latency, GPUs (and who holds them), disk, inodes, load, gpuq jobs')
    .argument('[names...]', 'only these nodes')
    .option('--json', 'print a JSON array')
    .action(async (names: string[], f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { probeNodes } = await import('../services/nodes.js');
      const reports = await probeNodes(ctx, names);
      // A node configured without a boundary runs its jobs without one, whatever it could give.
      for (const r of reports)
        if (r.status && ctx.config.nodes[r.name]?.boundary === 'none') r.status.boundary = 'none';
      if (f.json) app.printJson(reports);
      else app.print(renderNodes(reports, app.style(false), ctx.now()));
      if (reports.some((r) => !r.reachable)) app.exitCode = EXIT.unreachable;
    });
}
