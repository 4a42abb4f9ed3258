/**
 * `gpuq submit FILE`: flags → SubmitOptions → services/submit (and services/wait with --wait).
 */
import type { Command } from 'commander';
import { checkImageName } from '../core/docker-args.js';
import { usageError } from '../core/errors.js';
import { type LimitSpec, limitsFromFlags } from '../core/limits.js';
import type { SubmitOptions } from '../services/submit.js';
import type { CliApp } from './app.js';
import { parsePriority } from '../core/queue.js';
import { addJobOptions, submitWaitingFor } from './job-options.js';
import { checkFollow } from './wait.js';

interface SubmitFlags {
  node?: string;
  name?: string;
  competition?: string;
  isolation?: string;
  image?: string;
  keepContainer?: boolean;
  /** Absent when not given (no default, so the help shows none). */
  env?: string[];
  arg?: string[];
  include?: string[];
  wait?: boolean;
  follow?: boolean;
  json?: boolean;
  quiet?: boolean;
  priority?: string;
}

/** The limits' options, one per row of core/limits.ts, by commander's attribute name. */
type LimitFlags = Partial<Record<string, string>>;

/** commander's attribute name for an option: `--cpu-time` → `cpuTime`. */
const attributeOf = (spec: LimitSpec) => spec.flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Turns the raw flags into typed submit options, refusing bad values (exit 2). */
export function toSubmitOptions(file: string, f: SubmitFlags & LimitFlags): SubmitOptions {
  const limits = limitsFromFlags((spec) => f[attributeOf(spec)]);
  if (f.isolation !== undefined && f.isolation !== 'ulimit' && f.isolation !== 'docker') {
    throw usageError(`--isolation "${f.isolation}" is not one of: ulimit, docker.`);
  }
  const env: Record<string, string> = {};
  const envFlags = f.env ?? [];
  const args = f.arg ?? [];
  for (const kv of envFlags) {
    const i = kv.indexOf('=');
    const key = i < 0 ? kv : kv.slice(0, i);
    if (i < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw usageError(`--env "${kv}" is not KEY=VALUE with a KEY of letters, digits and _.`);
    if (key === 'GPUQ_JOB_ID') throw usageError('--env cannot set GPUQ_JOB_ID; gpuq sets it.');
    env[key] = kv.slice(i + 1);
  }
  // Node decodes the command line as UTF-8 and turns other bytes into U+FFFD before gpuq sees
  // them: such a value could not reach the program exactly as given, so it is refused.
  for (const [opt, values] of [
    ['--arg', args],
    ['--env', envFlags],
  ] as const) {
    if (values.some((v) => v.includes('\uFFFD')))
      throw usageError(`${opt} holds bytes that are not UTF-8 (or U+FFFD); gpuq passes only UTF-8 text.`);
  }
  if (f.name !== undefined && f.name.trim() === '')
    throw usageError('--name is empty; give a name or leave the option out.');
  return {
    file,
    node: f.node ?? null,
    name: f.name ?? null,
    competition: f.competition ?? null,
    limits,
    isolation: (f.isolation as SubmitOptions['isolation']) ?? null,
    image: f.image === undefined ? null : checkImageName(f.image, '--image'),
    ...(f.keepContainer ? { keepContainer: true } : {}),
    env,
    args,
    priority: f.priority === undefined ? 0 : parsePriority(f.priority),
    include: f.include ?? [],
  };
}

/** Registers `submit` on the program. */
export function registerSubmit(program: Command, app: CliApp): void {
  const cmd = program
    .command('submit')
    .description('record a job, start FILE on a node under limits, print its id')
    .argument('<files...>', 'the program (.py, .sh, or a #! script); several files: one job each');
  addJobOptions(cmd, 'submit')
    .addHelpText(
      'after',
      '\nDurations take a unit (500ms, 90s, 30m, 2h, 1h30m, 1d); sizes too (4096b, 512k, 512m, 2g, 1t).\n' +
        "The config's defaults, and a competition's limits, override the built-in defaults.",
    )
    .action(async (files: string[], flags: SubmitFlags & LimitFlags, command: Command) => {
      const opts = toSubmitOptions(files[0] as string, flags);
      const ctx = app.context(command);
      checkFollow(flags, files.length);
      if (files.length > 1) {
        const { submitFiles } = await import('./submit-many.js');
        await submitFiles(
          app,
          ctx,
          files.map((file) => ({ ...opts, file })),
          flags,
        );
        return;
      }
      if (flags.wait || flags.follow) return submitWaitingFor(app, ctx, opts, flags);
      const { submit } = await import('../services/submit.js');
      const job = await submit(ctx, opts, app.io.cwd);
      if (flags.json) app.printJson(job);
      else if (flags.quiet) app.print(job.id);
      else {
        app.print(job.id);
        app.io.stderr.write(
          job.state === 'queued'
            ? `gpuq: queued on ${job.node}, waiting for ${job.limits.gpus} GPU(s); see where it stands with: gpuq show ${job.id}\n`
            : `gpuq: started on ${job.node}${job.gpus.length ? ` (GPU ${job.gpus.join(',')})` : ''}; ` +
                `follow it with: gpuq logs -f ${job.id}\n`,
        );
      }
    });
}
