/**
 * Parses the `key value` lines of nodeStatusCommand into plain data. Pure.
 */
import { type NodeLease, type NodeQueue, type NodeTicket, parseTicketName } from '../core/queue.js';
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
  /**
   * The node's GPU queue from its lock folder: live tickets in order, each configured GPU's lease
   * (absent or null: not asked; a lock folder not made yet reads as empty, every GPU free).
   */
  queue?: NodeQueue | null;
}

const HOLDER_TEXT_MAX = 200;

/** What a gpu-N.lock says of its holder: display only, bounded and type-checked (any account can write it). */
function parseHolder(b64: string): Pick<NodeLease, 'job' | 'submitter' | 'supervisorPid' | 'sinceMs' | 'timeoutS'> {
  const none = { job: null, submitter: null, supervisorPid: null, sinceMs: null, timeoutS: null };
  if (!/^[A-Za-z0-9+/=]{1,8192}$/.test(b64)) return none;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    return none;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return none;
  const o = v as Record<string, unknown>;
  const text = (x: unknown) => (typeof x === 'string' ? x.slice(0, HOLDER_TEXT_MAX) : null);
  const int = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null);
  return {
    job: text(o.job),
    submitter: text(o.submitter),
    supervisorPid: int(o.supervisorPid),
    sinceMs: int(o.sinceMs),
    timeoutS: int(o.timeoutS),
  };
}

/**
 * The queue part of a node status (commands.ts lockLines) as data: tickets whose waiter holds
 * them, in queue order; per GPU, held (its .lock is locked), orphan (only its .hold: the program
 * outlived its supervisor) or free, with what the holder wrote.
 */
export function parseNodeQueue(lines: readonly string[], gpus: readonly number[]): NodeQueue | null {
  let seen = false;
  const held = new Map<string, boolean>();
  const tickets: { name: string; t: NodeTicket }[] = [];
  const holders = new Map<number, string>();
  for (const raw of lines) {
    const w = raw.trim().split(/\s+/);
    if (w[0] === 'lockdir') seen = true;
    else if (w[0] === 'lk' && w.length === 5 && (w[1] === 'lock' || w[1] === 'hold'))
      held.set(`${w[1]} ${w[2]}`, w[4] === '1');
    else if (w[0] === 'tk' && w.length === 3 && w[1] === '1') {
      const t = parseTicketName(w[2] as string);
      if (t) tickets.push({ name: w[2] as string, t });
    } else if (w[0] === 'holder' && w.length === 3 && /^\d{1,4}$/.test(w[1] as string))
      holders.set(Number(w[1]), w[2] as string);
  }
  if (!seen) return null;
  tickets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const leases: NodeLease[] = gpus.map((index) => {
    const lock = held.get(`lock ${index}`) === true;
    const hold = held.get(`hold ${index}`) === true;
    const state = lock ? 'held' : hold ? 'orphan' : 'free';
    const who = state === 'free' ? parseHolder('') : parseHolder(holders.get(index) ?? '');
    return { index, state, ...who };
  });
  return { tickets: tickets.map((x) => x.t), leases };
}

const MIB = 1024 * 1024;

function num(s: string | undefined): number | null {
  if (s === undefined) return null;
  const t = s.trim();
  if (t === '' || !/^-?[0-9.]+$/.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/**
 * Turns nodeStatusCommand's output into a NodeStatus; tolerant of missing lines and tools. With
 * `gpus` (the node's configured GPU indices, when the lock folder was asked about) also `queue`.
 */
export function parseNodeStatus(text: string, gpus: readonly number[] | null = null): NodeStatus {
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
  if (gpus !== null) st.queue = parseNodeQueue(text.split('\n'), gpus);
  return st;
}
