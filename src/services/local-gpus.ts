/**
 * The GPUs of a local node that has no `gpus` in the config (the embedded `local` node among
 * them): found with nvidia-smi when a command needs them (submit, nodes), never while loading the
 * config, so `list`, `show` and the rest never run it. A GPU list found is kept for a minute in
 * the state folder (`local-gpus.json`), so a burst of submits asks nvidia-smi once; "no GPU" is
 * never kept (asking again is cheap where nvidia-smi is missing, and a driver just installed is
 * seen at once). nvidia-smi missing, failing or slower than GPU_LIST_TIMEOUT_S means no GPU.
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeConfig } from '../config/types.js';
import { GPU_LIST_TIMEOUT_S, gpuListCommand } from '../node/commands.js';
import { type GpuList, parseGpuList } from '../node/gpu-list.js';
import { bounded, connectBounded } from './connect.js';
import type { AppContext } from './context.js';

/** How long a GPU list found stays good for submit. */
export const GPU_CACHE_MS = 60_000;

const CACHE_FILE = 'local-gpus.json';

/** The cached list when it is fresh and well formed, else null. */
function readCache(stateDir: string, now: number): number[] | null {
  try {
    const data: unknown = JSON.parse(readFileSync(join(stateDir, CACHE_FILE), 'utf8'));
    if (typeof data !== 'object' || data === null) return null;
    const { at, gpus } = data as { at?: unknown; gpus?: unknown };
    if (typeof at !== 'number' || !(now - at >= 0 && now - at < GPU_CACHE_MS)) return null;
    if (!Array.isArray(gpus) || gpus.length === 0 || gpus.length > 1024) return null;
    if (!gpus.every((g) => Number.isInteger(g) && g >= 0 && g < 10_000)) return null;
    return gpus as number[];
  } catch {
    return null;
  }
}

/** The cache is a shortcut only: a state folder that cannot take it costs the next submit a probe. */
function writeCache(stateDir: string, now: number, gpus: number[]): void {
  const file = join(stateDir, CACHE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${JSON.stringify({ at: now, gpus })}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
  }
}

/** Asks nvidia-smi on the node, bounded in time whatever the driver does; no GPU on any failure. */
async function probe(ctx: AppContext, node: NodeConfig): Promise<GpuList> {
  try {
    const t = await connectBounded(ctx, node);
    try {
      const limitMs = (GPU_LIST_TIMEOUT_S + 3) * 1000;
      const r = await bounded(
        t.exec(gpuListCommand()),
        limitMs,
        () => undefined,
        () => new Error('timed out'),
      );
      return parseGpuList(r.stdout);
    } finally {
      await t.close().catch(() => undefined);
    }
  } catch (e) {
    const why = (e as Error)?.message === 'timed out' ? `did not answer within ${GPU_LIST_TIMEOUT_S} s` : 'failed';
    return { gpus: [], problem: `nvidia-smi ${why}` };
  }
}

/**
 * The nodes named (all when none are) with the GPUs of each local node that has none in the
 * config filled in from nvidia-smi, and `gpusNotFound` saying why where there were none. A node
 * with `gpus` in the config is returned as it is: the config wins over detection. `fresh` skips
 * the cached list (`gpuq nodes` shows what nvidia-smi says now).
 */
export async function withLocalGpus(
  ctx: AppContext,
  nodes: NodeConfig[],
  opts: { fresh?: boolean } = {},
): Promise<NodeConfig[]> {
  if (!nodes.some((n) => n.detectGpus)) return nodes;
  const now = ctx.now().getTime();
  const cached = opts.fresh ? null : readCache(ctx.config.stateDir, now);
  let found: GpuList;
  if (cached) {
    found = { gpus: cached, problem: null };
  } else {
    // Every local node is this machine: one probe serves them all.
    found = await probe(ctx, nodes.find((n) => n.detectGpus) as NodeConfig);
    if (found.gpus.length > 0) writeCache(ctx.config.stateDir, now, found.gpus);
  }
  return nodes.map((n) => (n.detectGpus ? { ...n, gpus: [...found.gpus], gpusNotFound: found.problem } : n));
}
