/**
 * Node and GPU choice. Pure: the caller gathers loads, these functions decide.
 */

export interface NodeLoad {
  name: string;
  /** gpuq jobs running there, from the ledger. */
  runningJobs: number;
  /** 1-minute load average, when known. */
  load: number | null;
  /** GPU indices the node offers. */
  gpus: number[];
}

/**
 * Orders candidate nodes for a job needing `gpus` GPUs: only nodes with enough GPUs, fewest
 * running gpuq jobs first, then lowest load, then name (stable).
 */
export function rankNodes(nodes: readonly NodeLoad[], gpus: number): NodeLoad[] {
  return nodes
    .filter((n) => n.gpus.length >= gpus)
    .sort((a, b) => a.runningJobs - b.runningJobs || (a.load ?? Infinity) - (b.load ?? Infinity) || a.name.localeCompare(b.name));
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
