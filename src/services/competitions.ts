/**
 * `gpuq competitions` (the config's competitions) and `gpuq competitions check [NAME]` (every node
 * reached at once, each bounded by its connect timeout and the fingerprint's time limit: whether
 * data, answers and grader are there, and the fingerprints of data and answers).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompetitionConfig, NodeConfig } from '../config/types.js';
import type { CompetitionCheck } from '../core/competition-check.js';
import { NodeFaultError, NodeUnreachableError, UserError, usageError } from '../core/errors.js';
import { FINGERPRINT_TIMEOUT_S } from '../node/commands.js';
import { checkCompetitionsOn } from '../node/protocol.js';
import type { Transport } from '../transport/transport.js';
import { bounded, connectBounded } from './connect.js';
import type { AppContext } from './context.js';

/** The config's competitions, by name (the `--json` shape of `gpuq competitions`). */
export function listCompetitions(ctx: AppContext): CompetitionConfig[] {
  return Object.values(ctx.config.competitions).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A competition of the config by name; exit 2 naming the ones there are. */
export function competitionNamed(ctx: AppContext, name: string): CompetitionConfig {
  const c = ctx.config.competitions[name];
  if (c) return c;
  const names = Object.keys(ctx.config.competitions).sort();
  throw usageError(
    `no competition "${name}" in the config.`,
    names.length > 0
      ? `Competitions in ${ctx.config.source ?? 'the config'}: ${names.join(', ')}.`
      : `Add it under "competitions" in ${ctx.config.source ?? 'a config file (README, "Grading and results")'}.`,
  );
}

/** One node's answer to `gpuq competitions check` (the `--json` shape: an array of these). */
export interface NodeCheck {
  node: string;
  transport: NodeConfig['transport'];
  host: string | null;
  reachable: boolean;
  /**
   * Why the node could not be checked (one sentence), and what to do, when known; with `reachable`
   * true, the node answered but the check failed there.
   */
  error: string | null;
  hint: string | null;
  competitions: CompetitionCheck[];
}

/**
 * Checks `name` (or every competition) on every node of the config, all at once. An unreachable
 * node is a report with its reason, never an exception; an unknown name is exit 2.
 */
export async function checkCompetitions(ctx: AppContext, name: string | null): Promise<NodeCheck[]> {
  const comps = name !== null ? [competitionNamed(ctx, name)] : listCompetitions(ctx);
  if (comps.length === 0)
    throw usageError(
      'there are no competitions in the config to check.',
      `Add one under "competitions" in ${ctx.config.source ?? 'a config file'} (README, "Grading and results").`,
    );
  const script = await readFile(join(ctx.packageRoot, 'templates', 'fingerprint.py'), 'utf8');
  return Promise.all(Object.values(ctx.config.nodes).map((node) => checkOne(ctx, node, comps, script)));
}

async function checkOne(
  ctx: AppContext,
  node: NodeConfig,
  comps: CompetitionConfig[],
  script: string,
): Promise<NodeCheck> {
  const report: NodeCheck = {
    node: node.name,
    transport: node.transport,
    host: node.host,
    reachable: false,
    error: null,
    hint: null,
    competitions: [],
  };
  let t: Transport;
  try {
    t = await connectBounded(ctx, node);
  } catch (e) {
    return { ...report, ...errorParts(e) };
  }
  try {
    const limitS = FINGERPRINT_TIMEOUT_S + Math.max(10, node.connectTimeoutS);
    report.competitions = await bounded(
      checkCompetitionsOn(t, node.workdir, comps, script),
      limitS * 1000,
      () => undefined,
      () =>
        new NodeUnreachableError(
          node.name,
          `connected, but the check did not finish within ${limitS} s`,
          'a hung mount on the node can cause this',
        ),
    );
    report.reachable = true;
  } catch (e) {
    // A node that answered but could not run the check is reachable: its problem is said as one.
    Object.assign(report, errorParts(e), { reachable: e instanceof NodeFaultError });
  } finally {
    await t.close().catch(() => undefined);
  }
  return report;
}

function errorParts(e: unknown): { error: string; hint: string | null } {
  if (e instanceof NodeUnreachableError) return { error: e.cause_, hint: e.hint };
  if (e instanceof UserError) return { error: e.message, hint: e.hint };
  return { error: (e as Error)?.message ?? String(e), hint: null };
}
