/**
 * Parses the `key value` lines of nodeStatusCommand into plain data. Pure.
 */
import { BOUNDARIES, type Boundary } from '../core/types.js';

export interface GpuProcess {
  pid: number;
  user: string | null;
  memoryBytes: number | null;
  /** The gpuq job it belongs to, when the node let us read its environment. */
  jobId: string | null;
}

export interface GpuStatus {
  index: number;
  uuid: string;
  name: string;
  utilizationPct: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  processes: GpuProcess[];
}

export interface NodeStatus {
  hostname: string | null;
  /** 1, 5 and 15-minute load averages. */
  load: [number, number, number] | null;
  cpus: number | null;
  bootId: string | null;
  /** gpuq jobs whose supervisor runs in the node's workdir (any client). */
  runningJobs: number | null;
  memory: { totalBytes: number; availableBytes: number | null } | null;
  /** Where disk and inodes were measured: the workdir or its nearest existing parent. */
  diskPath: string | null;
  disk: { totalBytes: number; usedBytes: number; freeBytes: number } | null;
  inodes: { total: number; used: number; free: number } | null;
  /** null: nvidia-smi not found (or a light probe); []: found, no GPU listed. */
  gpus: GpuStatus[] | null;
  /** The trust boundary a job can get on this node (null: a light probe, or not said). */
  boundary?: Boundary | null;
}

const MIB = 1024 * 1024;

function num(s: string | undefined): number | null {
  if (s === undefined) return null;
  const t = s.trim();
  if (t === '' || !/^-?[0-9.]+$/.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/** Turns nodeStatusCommand's output into a NodeStatus; tolerant of missing lines and tools. */
export function parseNodeStatus(text: string): NodeStatus {
  const st: NodeStatus = {
    hostname: null,
    load: null,
    cpus: null,
    bootId: null,
    runningJobs: null,
    memory: null,
    diskPath: null,
    disk: null,
    inodes: null,
    gpus: null,
    boundary: null,
  };
  const apps: { uuid: string; proc: GpuProcess }[] = [];
  for (const raw of text.split('\n')) {
    const sp = raw.indexOf(' ');
    const key = sp < 0 ? raw.trim() : raw.slice(0, sp);
    const value = sp < 0 ? '' : raw.slice(sp + 1).trim();
    const words = value.split(/\s+/);
    switch (key) {
      case 'host':
        st.hostname = value || null;
        break;
      case 'load': {
        const l = words.map((w) => num(w));
        if (l.length === 3 && l.every((x) => x !== null)) st.load = l as [number, number, number];
        break;
      }
      case 'cpus':
        st.cpus = num(value);
        break;
      case 'boot':
        st.bootId = value || null;
        break;
      case 'jobs':
        st.runningJobs = num(value);
        break;
      case 'memtotal':
        st.memory = { totalBytes: num(value) ?? 0, availableBytes: st.memory?.availableBytes ?? null };
        break;
      case 'memavail':
        st.memory = { totalBytes: st.memory?.totalBytes ?? 0, availableBytes: num(value) };
        break;
      case 'diskpath':
        st.diskPath = value || null;
        break;
      case 'disk': {
        const [t, u, f] = words.map((w) => num(w));
        if (t != null && u != null && f != null) st.disk = { totalBytes: t, usedBytes: u, freeBytes: f };
        break;
      }
      case 'inodes': {
        const [t, u, f] = words.map((w) => num(w));
        if (t != null && u != null && f != null) st.inodes = { total: t, used: u, free: f };
        break;
      }
      case 'boundary':
        st.boundary = (BOUNDARIES as readonly string[]).includes(value) ? (value as Boundary) : null;
        break;
      case 'nogpu':
        st.gpus = null;
        break;
      case 'gpu': {
        const [index, uuid, name, util, used, total] = value.split(',').map((x) => x.trim());
        const i = num(index);
        if (i === null || !uuid) break;
        const mib = (x: string | undefined) => {
          const n = num(x);
          return n === null ? null : n * MIB;
        };
        st.gpus ??= [];
        st.gpus.push({
          index: i,
          uuid,
          name: name ?? '',
          utilizationPct: num(util),
          memoryUsedBytes: mib(used),
          memoryTotalBytes: mib(total),
          processes: [],
        });
        break;
      }
      case 'app': {
        const [uuid, pid, mem, user, job] = value.split(',').map((x) => x.trim());
        const p = num(pid);
        if (!uuid || p === null) break;
        const m = num(mem);
        apps.push({
          uuid,
          proc: { pid: p, user: user || null, memoryBytes: m === null ? null : m * MIB, jobId: job || null },
        });
        break;
      }
      default:
        break;
    }
  }
  for (const a of apps) st.gpus?.find((g) => g.uuid === a.uuid)?.processes.push(a.proc);
  return st;
}
