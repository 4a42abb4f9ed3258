/**
 * `gpuq rerun ID`: the program as it was submitted (its kept copy, not the file as it is now),
 * with the same options, as a new job; options given to rerun override the old job's.
 */
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Job } from '../core/types.js';
import type { AppContext } from './context.js';
import { findJob } from './find.js';
import type { SubmitOptions } from './submit.js';

/**
 * What was given to `rerun` besides the id: each field present overrides the old job's. `limits`
 * and `env` override key by key (the other limits and variables stay the old job's); `args`
 * replaces the whole list.
 */
export interface RerunOverrides {
  node?: string;
  name?: string;
  competition?: string;
  limits: Partial<SubmitOptions['limits']>;
  isolation?: SubmitOptions['isolation'];
  image?: string;
  /** `--keep-container`: keep the new job's container for a post-mortem (never taken from the old job). */
  keepContainer?: boolean;
  env: Record<string, string>;
  args?: string[];
  priority?: number;
  /** `--include PATH…`: files to upload with the program (the old job's are not kept). */
  include?: string[];
}

/**
 * The submit options of a rerun: the old job's (its limits as they were in force, its node only
 * when it was asked for, its competition, environment, arguments, name and priority) under the
 * overrides. Pure.
 */
export function rerunOptions(old: Job, over: RerunOverrides): SubmitOptions {
  if (!old.kept)
    throw new UserError(
      `job ${old.id} was submitted before gpuq kept a copy of each submitted program, so its program ` +
        'as it was submitted is not known.',
      EXIT.usage,
      `Submit the file again: gpuq submit ${old.file}`,
    );
  if ((old.kept.included ?? 0) > 0 && !over.include?.length)
    throw new UserError(
      `job ${old.id} was submitted with --include; gpuq keeps the program, not the included files.`,
      EXIT.usage,
      `Give them again: gpuq rerun ${old.id} --include PATH (repeatable).`,
    );
  return {
    file: old.file,
    ...(over.include?.length ? { include: over.include } : {}),
    keptSha256: old.kept.sha256,
    node: over.node ?? old.kept.node,
    name: over.name ?? old.name,
    competition: over.competition ?? old.competition,
    limits: { ...old.limits, ...over.limits },
    isolation: over.isolation ?? old.isolation,
    image: over.image ?? old.image,
    ...(over.keepContainer ? { keepContainer: true } : {}),
    env: { ...old.env, ...over.env },
    args: over.args ?? old.args,
    priority: over.priority ?? old.priority ?? 0,
  };
}

/** Finds the job to run again and returns the submit options of its rerun (see rerunOptions). */
export async function planRerun(
  ctx: AppContext,
  id: string,
  over: RerunOverrides,
): Promise<{ old: Job; opts: SubmitOptions }> {
  const old = await findJob(ctx, id);
  return { old, opts: rerunOptions(old, over) };
}
