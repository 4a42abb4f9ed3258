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
