/**
 * Finds, reads, validates and merges the configuration over the embedded default
 * (one node `local`). The only place that knows the contract's file locations.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { usageError } from '../core/errors.js';
import { submissionPathProblem } from '../core/grading.js';
import { builtinLimits, type LimitConfigName, limitsFromConfig } from '../core/limits.js';
import type { Limits } from '../core/types.js';
import { DEFAULT_FOREIGN_MIB, DEFAULT_LOCK_DIR } from '../core/queue.js';
import { parseDuration, parseSize } from '../core/units.js';
import { SBATCH_ALLOWED, sbatchArgProblem } from '../core/slurm.js';
import type { CompetitionConfig, Config, NodeConfig, SlurmNodeConfig } from './types.js';
import type { RawConfig, RawNode } from './schema.js';

export interface ConfigLocation {
  /** --config FILE, if given. */
  explicitFile?: string | null;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface Paths {
  configFile: string | null;
  stateDir: string;
}

/** Works out which config file applies and where state lives, per the contract's table. */
export function locate(loc: ConfigLocation): Paths {
  const home = loc.env.GPUQ_HOME ? resolve(loc.cwd, loc.env.GPUQ_HOME) : null;
  const stateDir = home ?? join(loc.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'gpuq');
  if (loc.explicitFile) return { configFile: resolve(loc.cwd, loc.explicitFile), stateDir };
  const candidates = home
    ? [join(home, 'config.json')]
    : [
        join(loc.cwd, 'gpuq.config.json'),
        join(loc.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'gpuq', 'config.json'),
      ];
  return { configFile: candidates.find((f) => existsSync(f)) ?? null, stateDir };
}

/**
 * Loads the configuration that applies, or refuses it naming the file, the field and what is
 * allowed. The schema (zod, ~70 ms to import: more than the rest of a read command) is only
 * loaded when the file changed since it last passed (see validatedStamp).
 */
export async function loadConfig(loc: ConfigLocation): Promise<Config> {
  const { configFile, stateDir } = locate(loc);
  let raw: RawConfig = {};
  if (configFile) {
    if (loc.explicitFile && !existsSync(configFile)) {
      throw usageError(`config file ${configFile} does not exist.`, 'Check the path given to --config.');
    }
    const text = readText(configFile);
    const stampFile = join(stateDir, 'config.validated');
    const stamp = validatedStamp(configFile, text);
    if (stamp !== null && readQuietly(stampFile) === stamp) {
      raw = JSON.parse(text) as RawConfig;
    } else {
      const { configSchema } = await import('./schema.js');
      raw = readConfigFile(configFile, configSchema, text);
      if (stamp !== null) writeQuietly(stampFile, stamp);
    }
  }
  return buildConfig(raw, configFile, stateDir);
}

/**
 * What identifies a config that passed the schema: its path and text, and the compiled source
 * of the schema and of the limits table it derives fields from (so an upgrade of gpuq checks
 * again). Null where those cannot be read (tests run the TypeScript sources): then every load
 * validates.
 */
export function validatedStamp(file: string, text: string): string | null {
  const hash = createHash('sha256').update(file).update('\0').update(text);
  try {
    for (const source of ['./schema.js', '../core/limits.js'])
      hash.update('\0').update(readFileSync(new URL(source, import.meta.url), 'utf8'));
  } catch {
    return null;
  }
  return hash.digest('hex');
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw usageError(`cannot read config file ${file}: ${(e as Error).message}.`);
  }
}

function readQuietly(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The stamp is only a shortcut: failing to write it costs the next command 70 ms, nothing else. */
function writeQuietly(file: string, text: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // read-only state folder: validate every time
  }
}

/**
 * Where JSON.parse stopped, as " at line L, column C" (1-based) for an editor, from the "position N"
 * its message gives (or the end of the text for "Unexpected end"); empty when it says neither.
 */
export function jsonErrorPlace(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  const at = m ? Math.min(Number(m[1]), text.length) : /end of JSON input/.test(message) ? text.length : null;
  if (at === null) return '';
  const before = text.slice(0, at).split('\n');
  return ` at line ${before.length}, column ${(before.at(-1) ?? '').length + 1}`;
}

/** Parses and validates one config file against the schema. */
export function readConfigFile(
  file: string,
  schema: typeof import('./schema.js')['configSchema'],
  text = readText(file),
): RawConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw usageError(
      `config file ${file} is not valid JSON${jsonErrorPlace(text, (e as Error).message)}: ${(e as Error).message}.`,
      'Fix the syntax and run the command again.',
    );
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    const what =
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    throw usageError(
      `config file ${file}: ${field}: ${what}.`,
      'See "Configuration" in the README for the allowed fields.',
    );
  }
  return parsed.data;
}

function fieldDuration(v: string | number, file: string | null, field: string): number {
  return parseDuration(String(v), `${file ?? 'config'}: ${field}`);
}
function fieldSize(v: string | number, file: string | null, field: string): number {
  return parseSize(String(v), `${file ?? 'config'}: ${field}`);
}

/**
 * A competition path written `./…` or `../…` (data, answers, a grader argument): relative to the
 * config file's folder, for the embedded local node, where the file and the node share one
 * machine (examples/ uses it). Anything else is left as it is (a node path).
 */
function besideConfig(path: string, file: string | null): string {
  if (file === null || !/^\.\.?\//.test(path)) return path;
  return resolve(dirname(file), path);
}

/** The limits set in `defaults` or a competition's `limits`, parsed and bounded by core/limits. */
function parseLimits(
  raw: Partial<Record<LimitConfigName, string | number | null>> | undefined,
  file: string | null,
  prefix: string,
): Partial<Limits> {
  return limitsFromConfig(raw ?? {}, (spec) => `${file ?? 'config'}: ${prefix}.${spec.config}`);
}

function buildNode(name: string, raw: RawNode, file: string | null, stateDir: string): NodeConfig {
  if (raw.transport === 'ssh' && !raw.host) {
    throw usageError(
      `config file ${file}: nodes.${name}.host: required for an ssh node.`,
      'Give a host name or an ~/.ssh/config alias.',
    );
  }
  const slurm = raw.transport === 'slurm' ? slurmOf(name, raw, file) : undefined;
  if (raw.transport !== 'slurm') {
    const stray = (['partition', 'account', 'qos', 'sbatchArgs', 'cpusPerTask'] as const).find(
      (k) => raw[k] !== undefined,
    );
    if (stray)
      throw usageError(
        `config file ${file}: nodes.${name}.${stray}: only a Slurm node has it.`,
        `Set "transport": "slurm" for node ${name}, or remove "${stray}".`,
      );
  }
  const gpus = raw.gpus === undefined ? [] : typeof raw.gpus === 'number' ? [...Array(raw.gpus).keys()] : raw.gpus;
  const workdir = raw.workdir ?? (raw.transport === 'local' ? join(stateDir, 'nodes', name) : '~/.gpuq');
  // The node's scripts read paths a line at a time: a line break in the folder would start the
  // job and then lose it.
  if (/[\n\r\0]/.test(workdir)) {
    throw usageError(
      raw.workdir === undefined
        ? `node ${name}'s folder ${JSON.stringify(workdir)} (under the state folder) contains a line break.`
        : `config file ${file}: nodes.${name}.workdir: ${JSON.stringify(workdir)} contains a line break.`,
      raw.workdir === undefined
        ? 'Choose a GPUQ_HOME (or XDG_STATE_HOME) without line breaks.'
        : 'Give the node a folder without line breaks.',
    );
  }
  return {
    name,
    transport: raw.transport,
    ...(slurm ? { slurm } : {}),
    host: raw.host ?? null,
    port: raw.port ?? null,
    user: raw.user ?? null,
    identityFile: raw.identityFile ?? null,
    jump: raw.jump ?? null,
    gpus,
    detectGpus: raw.transport === 'local' && raw.gpus === undefined,
    workdir,
    python: raw.python ?? 'python3',
    acceptNewHostKey: raw.acceptNewHostKey ?? false,
    connectTimeoutS:
      raw.connectTimeout !== undefined ? fieldDuration(raw.connectTimeout, file, `nodes.${name}.connectTimeout`) : 10,
    stallMarginS:
      raw.stallMargin !== undefined ? fieldDuration(raw.stallMargin, file, `nodes.${name}.stallMargin`) : null,
    boundary: raw.boundary ?? 'auto',
    runAs: raw.runAs ?? null,
    lockDir: raw.lockDir ?? DEFAULT_LOCK_DIR,
    foreignGpuMemoryBytes:
      raw.foreignGpuMemory !== undefined
        ? fieldSize(raw.foreignGpuMemory, file, `nodes.${name}.foreignGpuMemory`)
        : DEFAULT_FOREIGN_MIB * 1024 ** 2,
    docker: {
      command:
        typeof raw.docker?.command === 'string'
          ? raw.docker.command.split(/\s+/).filter(Boolean)
          : (raw.docker?.command ?? ['docker']),
      image: raw.docker?.image ?? null,
      runtime: raw.docker?.runtime ?? null,
      extraFlags: raw.docker?.extraFlags ?? [],
    },
  };
}

/** A Slurm node's fields, each extra sbatch argument checked against core/slurm's allowed list. */
function slurmOf(name: string, raw: RawNode, file: string | null): SlurmNodeConfig {
  const extra = raw.sbatchArgs ?? [];
  for (const [i, a] of extra.entries()) {
    const why = sbatchArgProblem(a);
    if (why)
      throw usageError(
        `config file ${file}: nodes.${name}.sbatchArgs[${i}]: ${why}.`,
        `Allowed: ${SBATCH_ALLOWED.map((o) => `--${o}`).join(', ')}.`,
      );
  }
  return {
    partition: raw.partition ?? null,
    account: raw.account ?? null,
    qos: raw.qos ?? null,
    sbatchArgs: extra,
    cpusPerTask: raw.cpusPerTask ?? 1,
  };
}

/** The embedded default node: runs jobs on this machine, same wrapper and limits, no SSH. */
export function localNode(stateDir: string): NodeConfig {
  return buildNode('local', { transport: 'local' }, null, stateDir);
}

/** Merges a validated raw config over the embedded default. */
export function buildConfig(raw: RawConfig, file: string | null, stateDir: string): Config {
  const nodes: Record<string, NodeConfig> = {};
  const rawNodes = raw.nodes ?? {};
  if (Object.keys(rawNodes).length === 0) nodes.local = localNode(stateDir);
  for (const [name, n] of Object.entries(rawNodes)) nodes[name] = buildNode(name, n, file, stateDir);

  const d = raw.defaults ?? {};
  const node = d.node ?? null;
  if (node !== null && !nodes[node]) {
    throw usageError(
      `config file ${file}: defaults.node: "${node}" is not one of the nodes (${Object.keys(nodes).join(', ')}).`,
    );
  }
  const competitions: Record<string, CompetitionConfig> = {};
  for (const [name, c] of Object.entries(raw.competitions ?? {})) {
    const subProblem = c.submission !== undefined ? submissionPathProblem(c.submission) : null;
    if (subProblem !== null) throw usageError(`config file ${file}: competitions.${name}.submission: ${subProblem}.`);
    competitions[name] = {
      name,
      grader: c.grader ? c.grader.map((a) => besideConfig(a, file)) : null,
      data: c.data !== undefined ? besideConfig(c.data, file) : null,
      answers: c.answers !== undefined ? besideConfig(c.answers, file) : null,
      submission: c.submission ?? 'submission.csv',
      graderLimits: {
        timeoutS:
          c.graderLimits?.timeout !== undefined
            ? fieldDuration(c.graderLimits.timeout, file, `competitions.${name}.graderLimits.timeout`)
            : 60,
        memoryBytes:
          c.graderLimits?.memory !== undefined
            ? fieldSize(c.graderLimits.memory, file, `competitions.${name}.graderLimits.memory`)
            : 2 * 1024 ** 3,
        outputBytes:
          c.graderLimits?.output !== undefined
            ? fieldSize(c.graderLimits.output, file, `competitions.${name}.graderLimits.output`)
            : 8 * 1024 ** 2,
      },
      maxSubmissionBytes:
        c.maxSubmissionSize !== undefined
          ? fieldSize(c.maxSubmissionSize, file, `competitions.${name}.maxSubmissionSize`)
          : 100 * 1024 ** 2,
      metric: c.metric ?? 'score',
      higherIsBetter: c.higherIsBetter ?? true,
      requireBoundary: c.requireBoundary ?? true,
      image: c.image ?? null,
      graderImage: c.graderImage ?? null,
      network: c.network ?? false,
      limits: parseLimits(c.limits, file, `competitions.${name}.limits`),
    };
  }
  return {
    source: file,
    stateDir,
    ledgerPath: join(stateDir, 'ledger.json'),
    knownHostsPath: join(stateDir, 'known_hosts'),
    defaults: {
      ...builtinLimits(),
      ...parseLimits(d, file, 'defaults'),
      node,
      isolation: d.isolation ?? 'ulimit',
      image: d.image ?? null,
      maxFileBytes:
        d.maxFileSize !== undefined ? fieldSize(d.maxFileSize, file, 'defaults.maxFileSize') : 10 * 1024 ** 2,
      maxUploadBytes:
        d.maxUploadSize !== undefined ? fieldSize(d.maxUploadSize, file, 'defaults.maxUploadSize') : 1024 ** 3,
      maxGetFileBytes:
        d.maxGetFileSize !== undefined ? fieldSize(d.maxGetFileSize, file, 'defaults.maxGetFileSize') : 1024 ** 3,
      maxGetBytes: d.maxGetSize !== undefined ? fieldSize(d.maxGetSize, file, 'defaults.maxGetSize') : 4 * 1024 ** 3,
    },
    nodes,
    competitions,
  };
}
