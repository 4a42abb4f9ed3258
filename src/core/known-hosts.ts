/**
 * known_hosts, as OpenSSH reads it: parsing, matching a presented host key, fingerprints.
 * Pure computation (node:crypto for HMAC and SHA-256), no I/O: src/transport/host-keys.ts
 * reads the files and decides what to do with the answer.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type KnownHostMarker = 'revoked' | 'cert-authority' | null;

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  marker: KnownHostMarker;
  /** Host patterns of a plain line (`a,b,!c,[d]:2222`); empty for a hashed one. */
  patterns: string[];
  /** Salt and digest of a hashed `|1|salt|hash` line; null for a plain one. */
  hashed: { salt: Buffer; hash: Buffer } | null;
  keyType: string;
  keyBase64: string;
  /** File the line came from (as given to the parser), and its 1-based line number. */
  source: string;
  line: number;
}

export type HostKeyResult = 'match' | 'mismatch' | 'unknown' | 'revoked';

export interface HostKeyCheck {
  result: HostKeyResult;
  /** Key types the files hold (plain, non-revoked lines) for this host and port. */
  knownTypes: string[];
  /** The lines that decided a mismatch or revocation (the ones to show the user). */
  conflicts: KnownHostEntry[];
}

/**
 * Parses known_hosts text into entries, skipping comments, blank and malformed lines, the way
 * OpenSSH tolerates them. `source` names the file in later messages.
 */
export function parseKnownHosts(text: string, source = 'known_hosts'): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/[ \t]+/);
    let marker: KnownHostMarker = null;
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!.toLowerCase();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH ignores the line
    }
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) continue;
    if (!isBase64(keyBase64)) continue;
    let hashed: KnownHostEntry['hashed'] = null;
    let patterns: string[] = [];
    if (hosts.startsWith('|')) {
      hashed = parseHashed(hosts);
      if (!hashed) continue;
    } else {
      patterns = hosts.split(',').filter((p) => p !== '');
      if (patterns.length === 0) continue;
    }
    entries.push({ marker, patterns, hashed, keyType, keyBase64, source, line: i + 1 });
  }
  return entries;
}

/**
 * Decides whether a host key presented by HOST:PORT is the one on record.
 * `revoked` beats everything; then any equal plain line is a `match`; a line for the host
 * with the same key type but another key is a `mismatch`; otherwise `unknown` (with the
 * types that are on record, so a caller can restrict the negotiation to them).
 * `@cert-authority` lines are ignored: they vouch for certificates, not plain host keys.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
): HostKeyCheck {
  const presented = decodeKey(keyBase64);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && entryMatchesHost(e, host, port));
  const revoked = forHost.filter((e) => e.marker === 'revoked' && sameKey(e, presented));
  const plain = forHost.filter((e) => e.marker === null);
  const knownTypes = [...new Set(plain.map((e) => e.keyType))];
  if (revoked.length > 0) return { result: 'revoked', knownTypes, conflicts: revoked };
  if (plain.some((e) => e.keyType === keyType && sameKey(e, presented))) {
    return { result: 'match', knownTypes, conflicts: [] };
  }
  const sameType = plain.filter((e) => e.keyType === keyType);
  if (sameType.length > 0) return { result: 'mismatch', knownTypes, conflicts: sameType };
  return { result: 'unknown', knownTypes, conflicts: [] };
}

/** The key types on record (plain lines) for HOST:PORT, in file order: what to negotiate. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  return [
    ...new Set(entries.filter((e) => e.marker === null && entryMatchesHost(e, host, port)).map((e) => e.keyType)),
  ];
}

/** Whether an entry's host patterns (or hashed name) cover HOST:PORT, as OpenSSH matches them. */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const token = hostToken(host, port);
  if (entry.hashed) {
    const digest = createHmac('sha1', entry.hashed.salt).update(token).digest();
    return digest.length === entry.hashed.hash.length && timingSafeEqual(digest, entry.hashed.hash);
  }
  return matchPatternList(token, entry.patterns);
}

/**
 * The name a known_hosts line uses for a host: `host` on port 22, `[host]:port` otherwise
 * (lower-cased, as OpenSSH looks it up).
 */
export function hostToken(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/**
 * OpenSSH's pattern-list rule: a matching `!pattern` excludes the name outright, otherwise
 * any matching positive pattern includes it. `*` and `?` are wildcards; case-insensitive.
 */
export function matchPatternList(name: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    const pattern = negated ? p.slice(1) : p;
    if (wildcardMatch(name.toLowerCase(), pattern.toLowerCase())) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Glob match with `*` (any run) and `?` (one character); everything else literal. */
export function wildcardMatch(name: string, pattern: string): boolean {
  // Iterative matcher with backtracking on the last '*': linear-ish, no regex injection.
  let n = 0;
  let p = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === name[n])) {
      n++;
      p++;
    } else if (pc === '*') {
      star = p++;
      mark = n;
    } else if (star !== -1) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** "SHA256:…" of a public key blob, exactly as `ssh-keygen -l` prints it (no base64 padding). */
export function sha256Fingerprint(keyBase64: string): string {
  const digest = createHash('sha256').update(decodeKey(keyBase64)).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/** The known_hosts line that records KEY for HOST:PORT (plain, not hashed, so people can read it). */
export function formatKnownHostsLine(host: string, port: number, keyType: string, keyBase64: string): string {
  return `${hostToken(host, port)} ${keyType} ${keyBase64}`;
}

/**
 * The key type named inside an SSH public key blob (its first string, e.g. "ssh-ed25519"),
 * or null when the blob is malformed.
 */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return null;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/**
 * The `algorithms.serverHostKey` names that negotiate a key of each given type, limited to
 * what ssh2 can negotiate (an RSA key is offered as rsa-sha2-512/256 and ssh-rsa).
 */
export function hostKeyAlgorithmsFor(keyTypes: readonly string[]): string[] {
  const out: string[] = [];
  const add = (a: string) => {
    if (!out.includes(a)) out.push(a);
  };
  for (const t of [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'ssh-rsa',
    'ssh-dss',
  ]) {
    if (!keyTypes.includes(t)) continue;
    if (t === 'ssh-rsa') ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'].forEach(add);
    else add(t);
  }
  return out;
}

function parseHashed(field: string): { salt: Buffer; hash: Buffer } | null {
  const parts = field.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== '1') return null;
  const [, , salt, hash] = parts;
  if (!salt || !hash || !isBase64(salt) || !isBase64(hash)) return null;
  const s = Buffer.from(salt, 'base64');
  const h = Buffer.from(hash, 'base64');
  if (h.length !== 20 || s.length === 0) return null;
  return { salt: s, hash: h };
}

function decodeKey(keyBase64: string): Buffer {
  return Buffer.from(keyBase64, 'base64');
}

function sameKey(entry: KnownHostEntry, presented: Buffer): boolean {
  const known = decodeKey(entry.keyBase64);
  return known.length === presented.length && known.equals(presented);
}

function isBase64(s: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(s);
}
