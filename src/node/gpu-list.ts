/**
 * Parses gpuListCommand's output into the GPU indices of a node, or why none were found. Pure.
 */
import { GPU_LIST_TIMEOUT_S } from './commands.js';

export interface GpuList {
  /** GPU indices nvidia-smi listed, ascending, without repeats (empty: none found). */
  gpus: number[];
  /** Why no GPU was found, in a few words for an error message; null when some were. */
  problem: string | null;
}

/** Turns `missing`, `gpu N` and `rc CODE` lines into a GpuList; anything else in them is ignored. */
export function parseGpuList(text: string): GpuList {
  const found = new Set<number>();
  let rc: number | null = null;
  let missing = false;
  for (const line of text.split('\n')) {
    if (line.trim() === 'missing') missing = true;
    const gpu = /^gpu (\d{1,4})\s*(,|$)/.exec(line);
    if (gpu) found.add(Number(gpu[1]));
    const code = /^rc (\d{1,3})$/.exec(line.trim());
    if (code) rc = Number(code[1]);
  }
  if (missing) return { gpus: [], problem: 'nvidia-smi is not installed here (not on the PATH)' };
  if (rc === 124 || rc === 137)
    return { gpus: [], problem: `nvidia-smi did not answer within ${GPU_LIST_TIMEOUT_S} s` };
  if (rc === null) return { gpus: [], problem: 'nvidia-smi could not be asked' };
  if (rc !== 0) return { gpus: [], problem: `nvidia-smi failed (exit ${rc}): no working NVIDIA driver?` };
  if (found.size === 0) return { gpus: [], problem: 'nvidia-smi lists no GPU' };
  return { gpus: [...found].sort((a, b) => a - b), problem: null };
}
