/**
 * Node and GPU choice. Pure: the caller gathers loads, these functions decide.
 */

export interface NodeLoad {
  name: string;
  /** gpuq jobs running there, from the ledger. */
  runningJobs: number;
  /** 1-minute load average, when known. */
  load: number | null;
  /** CPUs of the node, when known: load is compared per CPU, so a big idle node beats a small one. */
  cpus?: number | null;
  /** GPU indices the node offers. */
  gpus: number[];
}

/** Load per CPU (plain load when the CPU count is unknown); unknown load sorts last. */
export function relativeLoad(n: Pick<NodeLoad, 'load' | 'cpus'>): number {
  if (n.load === null || !Number.isFinite(n.load)) return Infinity;
  return n.cpus && n.cpus > 0 ? n.load / n.cpus : n.load;
}

/**
 * Orders candidate nodes for a job needing `gpus` GPUs: only nodes with enough GPUs, fewest
 * running gpuq jobs first, then lowest load per CPU (unknown last), then name (stable).
 */
export function rankNodes<T extends NodeLoad>(nodes: readonly T[], gpus: number): T[] {
  return nodes
    .filter((n) => n.gpus.length >= gpus)
    .sort((a, b) => a.runningJobs - b.runningJobs || relativeLoad(a) - relativeLoad(b) || a.name.localeCompare(b.name));
}

/**
 * How many unfinished jobs on `node` hold each GPU index, leaving out job `except` (the one
 * choosing). A job counts from the moment its GPUs are recorded, pending included.
 */
export function busyGpus(
  jobs: readonly { id: string; node: string; state: string; gpus: readonly number[] }[],
  node: string,
  except: string | null = null,
): Map<number, number> {
  const busy = new Map<number, number>();
  for (const j of jobs)
    if (j.node === node && j.state !== 'done' && j.id !== except)
      for (const g of j.gpus) busy.set(g, (busy.get(g) ?? 0) + 1);
  return busy;
}

/**
 * Picks `count` GPU indices on a node: the ones held by the fewest running gpuq jobs,
 * lowest index first on ties. `busy` maps an index to how many running jobs hold it.
 */
export function pickGpus(available: readonly number[], busy: ReadonlyMap<number, number>, count: number): number[] {
  if (count <= 0) return [];
  if (available.length < count) throw new Error(`asked for ${count} GPUs of ${available.length}`);
  return [...available]
    .sort((a, b) => (busy.get(a) ?? 0) - (busy.get(b) ?? 0) || a - b)
    .slice(0, count)
    .sort((a, b) => a - b);
}
