/**
 * An in-memory node for fast service tests: a `Transport` that answers gpuq's node scripts
 * (src/node/commands.ts) from a model of the node held in memory, by each script's purpose,
 * without a process or a socket. A test drives the jobs (finish one, keep one running) and the
 * link: a node that is down refuses to connect, and the connection can be told to drop before
 * or after a chosen script has run (after: the node did the work, the answer was lost). Real
 * sshd and real supervisors stay the outer ring (test/integration).
 *
 *   const n1 = new MemoryNode('n1');
 *   n1.dropOnce('start the supervisor', 'after');   // launched, but the pid never comes back
 *   const ctx = memoryContext({ nodes: [n1] });     // AppContext whose connect() reaches n1
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinLimits } from '../../src/core/limits.js';
import type { Config, NodeConfig } from '../../src/config/types.js';
import { NodeUnreachableError } from '../../src/core/errors.js';
import type { StatusFile } from '../../src/core/types.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { sectionMarker } from '../../src/node/commands.js';
import type { AppContext } from '../../src/services/context.js';
import type { ExecResult, RemoteCommand, StreamHandlers, Transport } from '../../src/transport/transport.js';
import { REPO } from './cli.js';

/** A job as the in-memory node holds it. */
export interface MemoryJob {
  dir: string;
  status: StatusFile;
  /** Whether its supervisor still holds job.lock. */
  alive: boolean;
  cancelRequested: boolean;
}

/** Where in a script's run the link drops. */
export type DropPoint = 'before' | 'after';

interface DropRule {
  purpose: string;
  when: DropPoint;
  then?: () => void;
}

/** A GPU node held in memory; `connect()` makes a Transport to it. */
export class MemoryNode {
  readonly name: string;
  readonly bootId: string;
  /** A down node refuses connections (NodeUnreachableError, retryable). */
  down = false;
  /** Every connection attempt, refused ones included. */
  connects = 0;
  /** Purposes of the scripts run, in order (a script dropped before it ran is not listed). */
  readonly ran: string[] = [];
  readonly jobs = new Map<string, MemoryJob>();
  /** Scripts that exit with this code and stderr instead of running (the node's own fault). */
  readonly faults = new Map<string, { code: number; stderr: string }>();
  private readonly drops: DropRule[] = [];
  private readonly open = new Set<MemoryTransport>();
  private readonly endWaiters = new Set<() => void>();
  private readonly waitWatchers = new Set<() => void>();
  private nextPid = 1000;

  constructor(name: string, bootId = `boot-${name}`) {
    this.name = name;
    this.bootId = bootId;
  }

  /**
   * The next script with this purpose loses the link, before it runs or after (answer lost);
   * `then` runs at the drop (e.g. to take the node down).
   */
  dropOnce(purpose: string, when: DropPoint, then?: () => void): void {
    this.drops.push({ purpose, when, then });
  }

  /** Drops every open connection now (pending streams reject). */
  dropAll(reason = 'connection reset'): void {
    for (const t of [...this.open]) t.lose(reason);
  }

  /** Ends a running job with `exitCode` (as its supervisor would record it). */
  finish(dir: string, exitCode: number, over: Partial<StatusFile> = {}): void {
    const job = this.job(dir);
    job.status = {
      ...job.status,
      state: 'exited',
      endedAtMs: job.status.startedAtMs + 1000,
      exitCode,
      signal: exitCode > 128 ? exitCode - 128 : null,
      ...over,
    };
    job.alive = false;
    for (const w of [...this.endWaiters]) w();
  }

  /** The one job under `dir`, or (without dir) the only job on the node. */
  job(dir?: string): MemoryJob {
    const j = dir === undefined && this.jobs.size === 1 ? [...this.jobs.values()][0] : this.jobs.get(dir ?? '');
    if (!j) throw new Error(`no job ${dir ?? '(only one)'} on memory node ${this.name}`);
    return j;
  }

  /** Opens a connection, or refuses as a down node does. */
  async connect(): Promise<Transport> {
    this.connects++;
    if (this.down) throw new NodeUnreachableError(this.name, `connection refused on ${this.name}:22`);
    const t = new MemoryTransport(this);
    this.open.add(t);
    return t;
  }

  /** @internal */
  forget(t: MemoryTransport): void {
    this.open.delete(t);
  }

  /** @internal the drop rule for this purpose at this point, consumed. */
  takeDrop(purpose: string, when: DropPoint): boolean {
    const i = this.drops.findIndex((d) => d.purpose === purpose && d.when === when);
    if (i < 0) return false;
    const [rule] = this.drops.splice(i, 1);
    rule?.then?.();
    return true;
  }

  /** Resolves once `count` waits for a job's end are blocked on this node (event, not polling). */
  whenWaiting(count = 1): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.endWaiters.size < count) return;
        this.waitWatchers.delete(check);
        resolve();
      };
      this.waitWatchers.add(check);
      check();
    });
  }

  /** @internal resolves when some job ends or `signal` aborts. */
  nextEnd(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.endWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.endWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
      for (const w of [...this.waitWatchers]) w();
    });
  }

  /** @internal answers one script, as bash on a node would. */
  answer(cmd: RemoteCommand): ExecResult {
    const fault = this.faults.get(cmd.purpose);
    if (fault) return { stdout: '', stderr: fault.stderr, code: fault.code };
    const ok = (stdout: string): ExecResult => ({ stdout, stderr: '', code: 0 });
    switch (cmd.purpose) {
      case 'read the node status': {
        const running = [...this.jobs.values()].filter((j) => j.alive).length;
        return ok(`host ${this.name}\nload 0.10 0.10 0.10\ncpus 8\nboot ${this.bootId}\njobs ${running}\n`);
      }
      case 'start the supervisor': {
        const dir = /\bd=(\S+?);/.exec(String(cmd.stdin ?? ''))?.[1];
        if (!dir) throw new Error('memory node: no job folder in the launch script');
        if (this.jobs.get(dir)?.alive) return { stdout: '', stderr: 'the job is already running\n', code: 3 };
        const pid = this.nextPid++;
        const status: StatusFile = {
          version: 1,
          state: 'running',
          supervisorPid: pid,
          pid: pid + 1,
          pgid: pid + 1,
          bootId: this.bootId,
          startedAtMs: 1_700_000_000_000,
          endedAtMs: null,
          exitCode: null,
          signal: null,
          timedOut: false,
          cancelled: false,
          limitFired: null,
          killedAfterGrace: false,
          cpuSeconds: null,
          cgroup: null,
          oomKills: null,
          pidsRefused: null,
          kernelOom: [],
          leftovers: 0,
        };
        this.jobs.set(dir, { dir, status, alive: true, cancelRequested: false });
        return ok(`${dir}\n${JSON.stringify(status)}\n`);
      }
      case 'check whether the job started': {
        const job = this.jobs.get(dirOf(cmd));
        return ok(job ? `${job.dir}\n${JSON.stringify(job.status)}\n` : 'none\n');
      }
      case 'read the job status':
      case 'wait for the job to end':
        return ok(this.probeText(cmd));
      case 'cancel the job': {
        const job = this.jobs.get(dirOf(cmd));
        if (!job) return ok('');
        job.cancelRequested = true;
        if (!job.alive) return ok('gone\n');
        this.finish(job.dir, 143, { cancelled: true, signal: 15 });
        return ok('signalled\n');
      }
      default:
        throw new Error(`memory node: no answer for "${cmd.purpose}"`);
    }
  }

  private probeText(cmd: RemoteCommand): string {
    const nonce = /@@gpuq-([0-9a-f]+)@@/.exec(cmd.script)?.[1];
    if (!nonce) throw new Error('memory node: probe without a nonce');
    const m = (n: string) => sectionMarker(nonce, n);
    const job = this.jobs.get(dirOf(cmd));
    if (!job) return `${m('missing')}\n`;
    return [
      m('status'),
      JSON.stringify(job.status),
      m('monitor'),
      m('alive'),
      job.alive ? 'yes' : 'no',
      m('boot'),
      this.bootId,
      m('samples'),
      m('stderr'),
      '',
      m('end'),
      '',
    ].join('\n');
  }
}

function dirOf(cmd: RemoteCommand): string {
  const dir = /cd -- (\S+)/.exec(cmd.script)?.[1];
  if (!dir) throw new Error(`memory node: no job folder in "${cmd.purpose}"`);
  return dir;
}

/** One connection to a MemoryNode; lost for good once dropped, like an SSH connection. */
class MemoryTransport implements Transport {
  readonly node: string;
  private lost: string | null = null;
  private closed = false;
  private readonly onLose = new Set<(reason: string) => void>();

  constructor(private readonly host: MemoryNode) {
    this.node = host.name;
  }

  lose(reason: string): void {
    if (this.lost !== null) return;
    this.lost = reason;
    this.host.forget(this);
    for (const f of [...this.onLose]) f(reason);
  }

  private lostError(purpose: string): NodeUnreachableError {
    return new NodeUnreachableError(this.node, `connection lost during "${purpose}" (${this.lost})`);
  }

  private before(cmd: RemoteCommand): void {
    if (this.closed) throw new Error(`memory node: "${cmd.purpose}" after close`);
    if (this.lost === null && this.host.takeDrop(cmd.purpose, 'before')) this.lose('dropped before the script ran');
    if (this.lost !== null) throw this.lostError(cmd.purpose);
  }

  private after(cmd: RemoteCommand, r: ExecResult): ExecResult {
    this.host.ran.push(cmd.purpose);
    if (this.lost === null && this.host.takeDrop(cmd.purpose, 'after')) this.lose('dropped before the answer came');
    if (this.lost !== null) throw this.lostError(cmd.purpose);
    return r;
  }

  async exec(cmd: RemoteCommand): Promise<ExecResult> {
    this.before(cmd);
    await Promise.resolve();
    return this.after(cmd, this.host.answer(cmd));
  }

  async stream(cmd: RemoteCommand, h: StreamHandlers): Promise<ExecResult> {
    this.before(cmd);
    if (cmd.purpose === 'wait for the job to end') {
      // Blocks like `flock -s job.lock` until the job ends, the link drops or the caller aborts.
      const dir = dirOf(cmd);
      let dropped: string | null = null;
      const onLose = (reason: string) => {
        dropped = reason;
        wake.abort();
      };
      const wake = new AbortController();
      const stop = () => wake.abort();
      h.signal?.addEventListener('abort', stop, { once: true });
      this.onLose.add(onLose);
      try {
        while (this.host.jobs.get(dir)?.alive && !wake.signal.aborted) await this.host.nextEnd(wake.signal);
      } finally {
        this.onLose.delete(onLose);
        h.signal?.removeEventListener('abort', stop);
      }
      if (dropped !== null) throw this.lostError(cmd.purpose);
      if (h.signal?.aborted) return { stdout: '', stderr: '', code: 143 };
    }
    const r = this.after(cmd, this.host.answer(cmd));
    if (r.stdout) h.onStdout?.(Buffer.from(r.stdout));
    if (r.stderr) h.onStderr?.(Buffer.from(r.stderr));
    return { stdout: '', stderr: '', code: r.code };
  }

  async send(): Promise<ExecResult> {
    throw new Error('memory node: send is not modelled (--include is tested against real nodes)');
  }

  async upload(): Promise<void> {
    throw new Error('memory node: upload is not modelled (programs up to 64 KiB travel inline)');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.host.forget(this);
  }
}

/** A node's config entry for a MemoryNode (workdir /mem/NAME, quick connect timeout). */
export function memoryNodeConfig(node: MemoryNode, over: Partial<NodeConfig> = {}): NodeConfig {
  return {
    name: node.name,
    transport: 'ssh',
    host: node.name,
    port: 22,
    user: 'gpuq',
    identityFile: null,
    jump: null,
    gpus: [],
    workdir: `/mem/${node.name}`,
    python: 'python3',
    acceptNewHostKey: false,
    connectTimeoutS: 10,
    stallMarginS: null,
    boundary: 'auto',
    runAs: null,
    docker: { command: ['docker'], image: null, runtime: null, extraFlags: [] },
    ...over,
  };
}

/** What a test reads back from a memory context's output. */
export interface CapturedOutput {
  results: string[];
  infos: string[];
}

/**
 * An AppContext over MemoryNodes: a fresh ledger in a temp folder, connect() reaching the node
 * of the same name, output captured. `nodes` gives each node's config overrides (gpus…).
 */
export function memoryContext(
  nodes: Array<MemoryNode | [MemoryNode, Partial<NodeConfig>]>,
  defaults: Partial<Config['defaults']> = {},
): { ctx: AppContext; out: CapturedOutput; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-mem-'));
  const byName = new Map<string, MemoryNode>();
  const configs: Record<string, NodeConfig> = {};
  for (const entry of nodes) {
    const [n, over] = Array.isArray(entry) ? entry : [entry, {}];
    byName.set(n.name, n);
    configs[n.name] = memoryNodeConfig(n, over);
  }
  const config: Config = {
    source: join(dir, 'config.json'),
    stateDir: dir,
    ledgerPath: join(dir, 'ledger.json'),
    knownHostsPath: join(dir, 'known_hosts'),
    defaults: {
      ...builtinLimits(),
      node: null,
      isolation: 'ulimit',
      image: null,
      maxFileBytes: 10 * 1024 ** 2,
      maxUploadBytes: 1024 ** 3,
      maxGetFileBytes: 1024 ** 3,
      maxGetBytes: 4 * 1024 ** 3,
      ...defaults,
    },
    nodes: configs,
    competitions: {},
  };
  const out: CapturedOutput = { results: [], infos: [] };
  const ctx: AppContext = {
    config,
    ledger: openLedger(config.ledgerPath),
    out: {
      result: (t) => out.results.push(t),
      info: (t) => out.infos.push(t),
      raw: () => undefined,
      stderrIsTTY: false,
    },
    now: () => new Date(),
    connect: (node) => {
      const n = byName.get(node.name);
      if (!n) throw new Error(`memory context: no node ${node.name}`);
      return n.connect();
    },
    packageRoot: REPO,
  };
  return { ctx, out, dir };
}
