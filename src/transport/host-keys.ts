/**
 * Host-key trust for SSH nodes: reads the user's known_hosts files and gpuq's own, gives ssh2
 * a hostVerifier that accepts only a recorded key (or, with accept-new, records a first one),
 * and turns every refusal into an exit-3 error that says exactly what to do.
 */
import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NodeUnreachableError } from '../core/errors.js';
import {
  checkHostKey,
  entryMatchesHost,
  formatKnownHostsLine,
  hostKeyAlgorithmsFor,
  hostToken,
  keyTypeOfBlob,
  knownKeyTypes,
  parseKnownHosts,
  sha256Fingerprint,
  type KnownHostEntry,
} from '../core/known-hosts.js';

/** A host key was refused: unknown (and not accepted), changed, or revoked. Exit 3. */
export class HostKeyRefusedError extends NodeUnreachableError {
  readonly kind: 'unknown' | 'changed' | 'revoked';
  /** The known_hosts line that would trust the presented key. */
  readonly knownHostsLine: string;
  constructor(
    node: string,
    kind: 'unknown' | 'changed' | 'revoked',
    message: string,
    cause: string,
    hint: string,
    line: string,
  ) {
    super(node, cause, hint, { retryable: false });
    this.name = 'HostKeyRefusedError';
    this.message = message;
    this.kind = kind;
    this.knownHostsLine = line;
  }
}

export interface HostKeyPolicy {
  /** The gpuq node name, for messages. */
  node: string;
  /** The name keys are recorded under (HostKeyAlias or the real host name) and its port. */
  host: string;
  port: number;
  /** gpuq's own known_hosts: read, and the only file a new key is ever written to. */
  knownHostsPath: string;
  /** Other files to read (~/.ssh/known_hosts, the global ones); missing ones are skipped. */
  otherFiles: string[];
  /** Trust and record a key for a host that has none on record. */
  acceptNew: boolean;
}

/** What ssh2 needs to verify one host, and what happened once it has. */
export interface HostKeyGate {
  /** Restrict negotiation to these algorithms (the key types on record), or null for ssh2's defaults. */
  serverHostKey: string[] | null;
  /** For ssh2's `hostVerifier`: calls back true only for a recorded (or newly accepted) key. */
  hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => void;
  /** The refusal, once the verifier has refused (ssh2 itself only says "verification failed"). */
  refusal(): HostKeyRefusedError | null;
  /** The line appended to knownHostsPath, if a new key was accepted. */
  recordedLine(): string | null;
}

/** Reads and parses known_hosts files, skipping those that do not exist or cannot be read. */
export async function loadKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const f of [...new Set(files)]) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    all.push(...parseKnownHosts(text, f));
  }
  return all;
}

/**
 * Prepares the host-key check for one endpoint: loads the files once, works out which key
 * types to negotiate, and returns the verifier ssh2 calls during the handshake.
 */
export async function prepareHostKeyGate(policy: HostKeyPolicy): Promise<HostKeyGate> {
  const entries = await loadKnownHosts([policy.knownHostsPath, ...policy.otherFiles]);
  const known = knownKeyTypes(entries, policy.host, policy.port);
  const algos = hostKeyAlgorithmsFor(known);
  let refused: HostKeyRefusedError | null = null;
  let recorded: string | null = null;

  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
    const keyType = keyTypeOfBlob(key);
    const keyBase64 = key.toString('base64');
    if (!keyType) {
      refused = new HostKeyRefusedError(
        policy.node,
        'changed',
        `node ${policy.node} sent a malformed host key; refusing to connect`,
        'malformed host key',
        'check that the host and port point at an SSH server',
        '',
      );
      verify(false);
      return;
    }
    const decision = decideHostKey(entries, policy, keyType, keyBase64);
    if (decision.kind === 'accept') {
      verify(true);
      return;
    }
    if (decision.kind === 'record') {
      recordHostKey(policy.knownHostsPath, decision.line).then(
        () => {
          recorded = decision.line;
          verify(true);
        },
        (err: Error) => {
          refused = new HostKeyRefusedError(
            policy.node,
            'unknown',
            `node ${policy.node}: could not record its new host key in ${policy.knownHostsPath}: ${err.message}`,
            'could not record the host key',
            `make ${dirname(policy.knownHostsPath)} writable, or add this line to it yourself:\n  ${decision.line}`,
            decision.line,
          );
          verify(false);
        },
      );
      return;
    }
    refused = decision.error;
    verify(false);
  };

  return {
    serverHostKey: algos.length > 0 ? algos : null,
    hostVerifier,
    refusal: () => refused,
    recordedLine: () => recorded,
  };
}

/** accept: on record; record: accept-new on an unknown host (append `line`); refuse: show `error`. */
export type Decision =
  | { kind: 'accept' }
  | { kind: 'record'; line: string }
  | { kind: 'refuse'; error: HostKeyRefusedError };

/**
 * The whole trust decision for one presented key, as data (no I/O): accept, record-and-accept
 * (accept-new on an unknown host), or refuse with the error to show.
 */
export function decideHostKey(
  entries: readonly KnownHostEntry[],
  policy: HostKeyPolicy,
  keyType: string,
  keyBase64: string,
): Decision {
  const check = checkHostKey(entries, policy.host, policy.port, keyType, keyBase64);
  const where = hostToken(policy.host, policy.port);
  const fp = sha256Fingerprint(keyBase64);
  const line = formatKnownHostsLine(policy.host, policy.port, keyType, keyBase64);
  const node = policy.node;
  switch (check.result) {
    case 'match':
      return { kind: 'accept' };
    case 'revoked': {
      const c = check.conflicts[0]!;
      return {
        kind: 'refuse',
        error: new HostKeyRefusedError(
          node,
          'revoked',
          `HOST KEY FOR node ${node} IS REVOKED: ${where} presents ${keyType} ${fp}, ` +
            `which ${c.source} line ${c.line} marks @revoked; refusing to connect.`,
          `host key ${fp} is revoked`,
          `Ask the administrator of ${where} for its current host key; do not connect until it is replaced.`,
          line,
        ),
      };
    }
    case 'mismatch': {
      const c = check.conflicts[0]!;
      return {
        kind: 'refuse',
        error: changedError(
          node,
          where,
          keyType,
          fp,
          line,
          `${c.source} line ${c.line} records ${c.keyType} ${sha256Fingerprint(c.keyBase64)}`,
          c.source,
          c.line,
        ),
      };
    }
    case 'unknown': {
      if (check.knownTypes.length > 0) {
        // The host is on record, but not with a key of this type: as suspicious as a changed key.
        const c = entries.find((e) => e.marker === null && entryMatchesHost(e, policy.host, policy.port))!;
        return {
          kind: 'refuse',
          error: changedError(
            node,
            where,
            keyType,
            fp,
            line,
            `${c.source} line ${c.line} records only ${check.knownTypes.join(', ')} keys for it`,
            c.source,
            c.line,
          ),
        };
      }
      if (policy.acceptNew) return { kind: 'record', line };
      return {
        kind: 'refuse',
        error: new HostKeyRefusedError(
          node,
          'unknown',
          `node ${node} is unreachable: the host key of ${where} is not known (${keyType} ${fp}).`,
          `unknown host key ${fp}`,
          `If ${fp} is ${where}'s real key ` +
            `(compare with \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on the node), trust it with ` +
            `\`gpuq nodes --accept-new-host-key\` (or --accept-new-host-key on the command), ` +
            `or set "acceptNewHostKey": true for node ${node} ` +
            `in the config, or add this line to ${policy.knownHostsPath}:\n  ${line}`,
          line,
        ),
      };
    }
  }
}

function changedError(
  node: string,
  where: string,
  keyType: string,
  fp: string,
  line: string,
  recordedAs: string,
  file: string,
  lineNo: number,
): HostKeyRefusedError {
  return new HostKeyRefusedError(
    node,
    'changed',
    `HOST KEY FOR node ${node} CHANGED: ${where} now presents ${keyType} ${fp}, but ${recordedAs}. ` +
      `Someone may be intercepting the connection (possible man-in-the-middle attack); refusing to connect.`,
    `host key changed (${fp})`,
    `If the node's key really changed (e.g. it was reinstalled), remove line ${lineNo} from ${file} ` +
      `(\`ssh-keygen -R '${where}' -f ${file}\`) and connect again with ` +
      `--accept-new-host-key, or replace it with:\n  ${line}`,
    line,
  );
}

/**
 * Appends one line to gpuq's known_hosts, creating its folder (0700) and the file (0600).
 * Only ever called for a host that has no key on record and accept-new on.
 */
export async function recordHostKey(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const fh = await open(path, 'a+', 0o600);
  try {
    const { size } = await fh.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last.toString() !== '\n') prefix = '\n';
    }
    await appendFile(fh, `${prefix}${line}\n`);
  } finally {
    await fh.close();
  }
}
