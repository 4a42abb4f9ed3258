/**
 * A private, real single-node Slurm cluster for tests (TESTING.md, "A real Slurm cluster"): its
 * own munged (socket and key in a temp folder), a slurm.conf naming this host with one partition
 * and two GRES GPUs (stand-in /dev/nvidia0 and 1 where missing), slurmctld and slurmd as root
 * with state in the temp folder, on free ports. Nothing of the system's Slurm or munge setup is
 * touched; clients find it through SLURM_CONF (`env`). Needs root and slurm-wlm + munge
 * (`.ci/run` installs them); start() FAILS naming what is missing.
 *
 *   const slurm = await startSlurm();       // in beforeAll
 *   makeHome(config, slurm.env)             // gpuq (and sbatch) see the cluster
 *   await slurm.stopController();           // slurmctld down; startController() brings it back
 *   await slurm.cleanup();                  // in afterAll: every daemon stopped, folder removed
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const BINARIES = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch'];

/** Why this machine cannot run the cluster (missing packages, not root), or null. */
export function slurmMissing(): string | null {
  const missing = BINARIES.filter((b) => !existsSync(b));
  if (missing.length > 0) return `${missing.join(', ')} (apt-get install -y slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return 'root (slurmd and the stand-in GPU devices need it)';
  return null;
}

export interface SlurmCluster {
  readonly dir: string;
  readonly conf: string;
  readonly partition: string;
  /** SLURM_CONF for gpuq and Slurm's commands. */
  readonly env: { SLURM_CONF: string };
  /** This host's short name: the cluster's one node. */
  readonly nodeName: string;
  /** Runs a Slurm command (squeue, scancel…) against the cluster; its stdout. */
  run(cmd: string, args: string[]): string;
  stopController(): Promise<void>;
  /** Starts slurmctld again; with `clear`, its saved state (the jobs it knew) is dropped. */
  startController(opts?: { clear?: boolean }): Promise<void>;
  /**
   * A copy of slurm.conf for clients only (squeue, sbatch… through SLURM_CONF) with a shorter
   * MessageTimeout: with slurmctld down, Slurm's commands retry their connection for that long
   * (10 s and more by default) before saying it cannot be reached. The daemons keep theirs.
   */
  clientConf(opts: { messageTimeoutS: number }): Promise<string>;
  /** The daemons' logs so far, for failure messages. */
  logs(): string;
  cleanup(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function until(check: () => boolean, ms: number, what: string, logs: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Slurm test cluster: ${what} within ${ms / 1000} s\n${logs()}`);
}

/** Starts the cluster; see the module comment. */
export async function startSlurm(opts: { partition?: string } = {}): Promise<SlurmCluster> {
  const missing = slurmMissing();
  if (missing) throw new Error(`the Slurm tests need ${missing}`);
  const partition = opts.partition ?? 'gpu';
  const dir = await mkdtemp(join(tmpdir(), 'gpuq-slurm-'));
  // Other accounts (the SSH test user) reach the munge socket and read slurm.conf in here.
  await chmod(dir, 0o755);
  for (const d of ['state', 'spool', 'log']) mkdirSync(join(dir, d));
  const nodeName = hostname().split('.')[0] as string;
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const made: string[] = [];
  for (const i of [0, 1]) {
    const dev = `/dev/nvidia${i}`;
    if (!existsSync(dev)) {
      execFileSync('mknod', [dev, 'c', '195', String(i)]);
      made.push(dev);
    }
  }
  const key = join(dir, 'munge.key');
  await writeFile(key, Buffer.from(Array.from({ length: 1024 }, () => Math.floor(Math.random() * 256))), {
    mode: 0o400,
  });
  const sock = join(dir, 'munge.sock');
  const memMiB = Math.max(2048, Math.floor(totalmem() / 1024 ** 2) - 1024);
  const conf = join(dir, 'slurm.conf');
  await writeFile(
    conf,
    [
      'ClusterName=gpuqtest',
      `SlurmctldHost=${nodeName}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${sock}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SchedulerType=sched/backfill',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core_Memory',
      'SlurmdParameters=config_overrides',
      'ReturnToService=2',
      'MpiDefault=none',
      'JobCompType=jobcomp/none',
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      'GresTypes=gpu',
      'MinJobAge=600',
      'KillWait=5',
      'DefMemPerCPU=100',
      // More CPUs than the machine has (config_overrides): the GPUs are what jobs wait for.
      `NodeName=${nodeName} NodeAddr=127.0.0.1 CPUs=8 RealMemory=${memMiB} Gres=gpu:2 State=UNKNOWN`,
      `PartitionName=${partition} Nodes=${nodeName} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  await writeFile(join(dir, 'gres.conf'), `AutoDetect=off\nNodeName=${nodeName} Name=gpu File=/dev/nvidia[0-1]\n`, {
    mode: 0o644,
  });
  const env = { ...process.env, SLURM_CONF: conf };
  const children = new Map<string, ChildProcess>();
  const logs = () =>
    ['slurmctld.log', 'slurmd.log', 'munged.log']
      .map((f) => {
        try {
          return `--- ${f}\n${readFileSync(join(dir, 'log', f), 'utf8')
            .split('\n')
            .slice(-15)
            .join('\n')}`;
        } catch {
          return `--- ${f}: none`;
        }
      })
      .join('\n');
  const daemon = (name: string, bin: string, args: string[]) => {
    const c = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    c.stderr?.setEncoding('utf8').on('data', () => undefined);
    children.set(name, c);
  };
  const stopDaemon = async (name: string) => {
    const c = children.get(name);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    try {
      process.kill(-(c.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
    await gone;
    children.delete(name);
  };
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  const sinfoIdle = () => {
    try {
      return /^(idle|mixed|allocated)/.test(run('sinfo', ['-h', '-N', '-o', '%T']).trim());
    } catch {
      return false;
    }
  };
  daemon('munged', '/usr/sbin/munged', [
    '--foreground',
    '--force',
    `--socket=${sock}`,
    `--key-file=${key}`,
    `--log-file=${dir}/log/munged.log`,
    `--pid-file=${dir}/munged.pid`,
    `--seed-file=${dir}/munged.seed`,
  ]);
  const startController = async (o: { clear?: boolean } = {}) => {
    daemon('slurmctld', '/usr/sbin/slurmctld', ['-D', o.clear ? '-c' : '-i', '-f', conf]);
    await until(
      () => {
        try {
          run('scontrol', ['ping']);
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'slurmctld did not answer',
      logs,
    );
  };
  const cleanup = async () => {
    // The jobs first (their processes are slurmstepd's, which outlives slurmd), while slurmctld runs.
    if (children.has('slurmctld') && children.has('slurmd')) {
      try {
        run('scancel', ['--partition', partition]);
        await until(() => run('squeue', ['-h']).trim() === '', 20_000, 'jobs did not end after scancel', logs);
      } catch {
        // the controller is down or jobs linger: the daemons go anyway
      }
    }
    await stopDaemon('slurmd');
    await stopDaemon('slurmctld');
    await stopDaemon('munged');
    for (const d of made) rmSync(d, { force: true });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(() => existsSync(sock), 20_000, 'munged made no socket', logs);
    await startController();
    daemon('slurmd', '/usr/sbin/slurmd', ['-D', '-f', conf, '-N', nodeName]);
    await until(sinfoIdle, 40_000, 'the node did not come up idle', logs);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    dir,
    conf,
    partition,
    env: { SLURM_CONF: conf },
    nodeName,
    run,
    stopController: () => stopDaemon('slurmctld'),
    startController,
    clientConf: async ({ messageTimeoutS }) => {
      const file = join(dir, `client-${Math.round(messageTimeoutS)}s.conf`);
      await writeFile(file, `${readFileSync(conf, 'utf8')}MessageTimeout=${Math.round(messageTimeoutS)}\n`, {
        mode: 0o644,
      });
      return file;
    },
    logs,
    cleanup,
  };
}
