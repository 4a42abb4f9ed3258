/**
 * Where an SSH node really is: its name may be an ~/.ssh/config alias, so ask OpenSSH itself
 * (`ssh -G`, which follows Include, Match and tokens) and layer the node's explicit config on
 * top. Without an `ssh` binary, the node's own fields (and defaults) are used as they are.
 */
import { existsSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import type { NodeConfig } from '../config/types.js';
import { usageError } from '../core/errors.js';

/** One SSH endpoint, fully resolved. */
export interface SshEndpoint {
  /** The name the user gave (alias, host name or `user@host:port` of a jump). */
  alias: string;
  /** The host to open a TCP connection to. */
  hostname: string;
  port: number;
  user: string;
  /** Private key files that exist, in the order to try them. */
  identityFiles: string[];
  /** Whether they were named explicitly (the node's identityFile): then they go before agent keys. */
  identityExplicit: boolean;
  /** Whether only the identity files may be offered (IdentitiesOnly), not agent keys. */
  identitiesOnly: boolean;
  /** The agent socket to use, or null for none. */
  agentSocket: string | null;
  /** The name host keys are looked up and recorded under (HostKeyAlias, else the host name). */
  hostKeyName: string;
  /** The port that goes with it: OpenSSH uses a HostKeyAlias bare, as if on port 22. */
  hostKeyPort: number;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  /** Jump hosts to pass through, first to last (ProxyJump), each resolved in turn. */
  jumps: string[];
  /** A ProxyCommand OpenSSH would run (unsupported by gpuq: connecting refuses it). */
  proxyCommand: string | null;
}

export interface ResolveOptions {
  /** An ssh config file to read instead of ~/.ssh/config (`ssh -F FILE`); else env GPUQ_SSH_CONFIG. */
  sshConfigFile?: string;
  /** Environment to read HOME, SSH_AUTH_SOCK, GPUQ_SSH_CONFIG from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Explicit fields that override what ssh config says. */
export interface EndpointOverrides {
  port?: number | null;
  user?: string | null;
  identityFile?: string | null;
  jump?: string | null;
}

/**
 * Resolves a node's host, port, user, keys and jump hosts the way `ssh NODE` would, with the
 * node's explicit config (port, user, identityFile, jump) taking precedence.
 */
export async function resolveNode(node: NodeConfig, opts: ResolveOptions = {}): Promise<SshEndpoint> {
  if (!node.host) throw usageError(`node ${node.name} has no host`, `set "host" for node ${node.name} in the config`);
  return resolveSshHost(
    node.host,
    { port: node.port, user: node.user, identityFile: node.identityFile, jump: node.jump },
    opts,
  );
}

/**
 * Resolves one host spec: an alias, a host name, or `[user@]host[:port]` / `ssh://user@host:port`
 * (the forms ProxyJump accepts). Overrides win over ssh config; ssh config wins over the spec's
 * defaults, except that a user or port written in the spec itself wins, as in OpenSSH.
 */
export async function resolveSshHost(
  spec: string,
  overrides: EndpointOverrides = {},
  opts: ResolveOptions = {},
): Promise<SshEndpoint> {
  const env = opts.env ?? process.env;
  const parsed = parseHostSpec(spec);
  const user = overrides.user ?? parsed.user;
  const port = overrides.port ?? parsed.port;
  const configFile = opts.sshConfigFile ?? (env.GPUQ_SSH_CONFIG || undefined);
  const g = await sshDashG(parsed.host, { user, port, configFile, env });
  const home = env.HOME || homedir();
  const localUser = safeLocalUser();

  const hostname = g?.get('hostname')?.[0] ?? parsed.host;
  const resolvedPort = port ?? numberOr(g?.get('port')?.[0], 22);
  const resolvedUser = user ?? g?.get('user')?.[0] ?? localUser;
  const tokens: TokenContext = {
    home,
    localUser,
    host: hostname,
    user: resolvedUser,
    port: resolvedPort,
    alias: parsed.host,
  };

  const identityCandidates = overrides.identityFile
    ? [overrides.identityFile]
    : (g?.get('identityfile') ?? defaultIdentityFiles());
  const identityFiles = identityCandidates.map((f) => expandPath(f, tokens)).filter((f) => existsSync(f));
  if (overrides.identityFile && identityFiles.length === 0) {
    throw usageError(
      `identity file ${overrides.identityFile} of node ${spec} does not exist`,
      'fix "identityFile" in the config, or leave it out to use ~/.ssh/config and the ssh agent',
    );
  }

  const agentSetting = g?.get('identityagent')?.[0];
  let agentSocket: string | null = env.SSH_AUTH_SOCK || null;
  if (agentSetting && agentSetting.toLowerCase() === 'none') agentSocket = null;
  else if (agentSetting && agentSetting !== 'SSH_AUTH_SOCK') {
    agentSocket = agentSetting.startsWith('$')
      ? env[agentSetting.slice(1).replace(/[{}]/g, '')] || null
      : expandPath(agentSetting, tokens);
  }

  const jumpSetting = overrides.jump ?? g?.get('proxyjump')?.[0] ?? null;
  const jumps =
    jumpSetting && jumpSetting.toLowerCase() !== 'none'
      ? jumpSetting
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const proxyCommand = overrides.jump ? null : (g?.get('proxycommand')?.join(' ') ?? null);

  return {
    alias: spec,
    hostname,
    port: resolvedPort,
    user: resolvedUser,
    identityFiles: [...new Set(identityFiles)],
    identityExplicit: Boolean(overrides.identityFile),
    identitiesOnly: (g?.get('identitiesonly')?.[0] ?? 'no').toLowerCase() === 'yes',
    agentSocket,
    hostKeyName: g?.get('hostkeyalias')?.[0] ?? hostname,
    hostKeyPort: g?.get('hostkeyalias')?.[0] !== undefined ? 22 : resolvedPort,
    userKnownHostsFiles: (
      g?.get('userknownhostsfile') ?? [join(home, '.ssh/known_hosts'), join(home, '.ssh/known_hosts2')]
    ).map((f) => expandPath(f, tokens)),
    globalKnownHostsFiles: g?.get('globalknownhostsfile') ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    jumps,
    proxyCommand: proxyCommand && proxyCommand.toLowerCase() !== 'none' ? proxyCommand : null,
  };
}

/** Splits `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`. */
export function parseHostSpec(spec: string): { host: string; user: string | null; port: number | null } {
  let s = spec.trim();
  if (s.startsWith('ssh://')) s = s.slice('ssh://'.length).replace(/\/$/, '');
  let user: string | null = null;
  const at = s.lastIndexOf('@');
  if (at > 0) {
    user = s.slice(0, at);
    s = s.slice(at + 1);
  }
  let port: number | null = null;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    s = v6[1]!;
    port = v6[2] ? Number(v6[2]) : null;
  } else {
    const m = /^([^:]+):(\d+)$/.exec(s);
    if (m) {
      s = m[1]!;
      port = Number(m[2]);
    }
  }
  if (s === '' || (port !== null && (port < 1 || port > 65535))) {
    throw usageError(`"${spec}" is not a valid SSH host`, 'write it as an alias, HOST, USER@HOST or USER@HOST:PORT');
  }
  return { host: s, user, port };
}

interface TokenContext {
  home: string;
  localUser: string;
  host: string;
  user: string;
  port: number;
  alias: string;
}

/** Expands a leading `~` and the ssh_config tokens %d %u %h %r %p %n %l %i %% in a path. */
export function expandPath(path: string, t: TokenContext): string {
  let p = path.replace(/%(.)/g, (whole, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return t.home;
      case 'u':
        return t.localUser;
      case 'h':
        return t.host;
      case 'r':
        return t.user;
      case 'p':
        return String(t.port);
      case 'n':
        return t.alias;
      case 'l':
        return safeHostname();
      case 'i':
        return String(process.getuid?.() ?? '');
      default:
        return whole;
    }
  });
  if (p === '~') p = t.home;
  else if (p.startsWith('~/')) p = join(t.home, p.slice(2));
  return p;
}

/** Runs `ssh -G` and returns its keys (lower-cased) with all their values; null when ssh is absent. */
async function sshDashG(
  host: string,
  o: { user: string | null; port: number | null; configFile: string | undefined; env: NodeJS.ProcessEnv },
): Promise<Map<string, string[]> | null> {
  const args: string[] = [];
  if (o.configFile) args.push('-F', o.configFile);
  if (o.user) args.push('-l', o.user);
  if (o.port) args.push('-p', String(o.port));
  args.push('-G', '--', host);
  // node:child_process, not execa: importing execa costs ~130 ms on every SSH command.
  const r = await new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile('ssh', args, { env: o.env, timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException).code ?? (err as { status?: number }).status ?? 1) : 0;
      resolve({
        code: typeof code === 'number' || typeof code === 'string' ? code : 1,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
    child.stdin?.end();
  });
  if (r.code === 'ENOENT') return null;
  if (r.code !== 0) {
    const why = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/Pseudo-terminal/.test(l))
      .join(' ');
    throw usageError(
      `ssh could not read the config for ${host}: ${why || `exit ${r.code}`}`,
      o.configFile ? `check ${o.configFile}` : 'check ~/.ssh/config',
    );
  }
  const stdout = r.stdout;
  const map = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    // Multi-valued on one line (known hosts files) or repeated lines (identityfile).
    const values = key.endsWith('knownhostsfile') ? value.split(/\s+/) : [value];
    map.set(key, [...(map.get(key) ?? []), ...values]);
  }
  return map;
}

function defaultIdentityFiles(): string[] {
  return ['id_rsa', 'id_ecdsa', 'id_ed25519', 'id_dsa'].map((f) => `~/.ssh/${f}`);
}

function numberOr(s: string | undefined, d: number): number {
  const n = Number(s);
  return Number.isInteger(n) && n > 0 ? n : d;
}

function safeLocalUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

function safeHostname(): string {
  try {
    return hostname();
  } catch {
    return 'localhost';
  }
}
