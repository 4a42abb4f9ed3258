/**
 * Kept copies of submitted programs, so `gpuq rerun` runs exactly what was submitted even after
 * the file on disk changed: `<state folder>/programs/<sha256>` (GPUQ_HOME/programs/…), one file
 * per distinct content (a resubmitted or rerun program is stored once), mode 0600 in a 0700
 * folder, written like every file of the state folder (private-file.ts: never through a link,
 * a full disk a user error). Each copy is at most the config's `defaults.maxFileSize` (submit
 * refuses a larger program), and `gpuq prune` removes a copy once no job left in the ledger
 * names it. The upload reads the kept copy, so the node runs the very bytes kept here.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  unlinkSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { writeError, writePrivateFileAtomic } from './private-file.js';

/** A program as kept: its content's SHA-256 (hex), size, and where the copy is. */
export interface KeptProgram {
  sha256: string;
  bytes: number;
  path: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The folder of kept programs inside a state folder. */
export function programsDir(stateDir: string): string {
  return join(stateDir, 'programs');
}

/** The kept copy's path for a content hash (which must be 64 hex digits: it names a file). */
export function keptProgramPath(stateDir: string, sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error(`gpuq bug: "${sha256}" is not a SHA-256 in hex`);
  return join(programsDir(stateDir), sha256);
}

/** SHA-256 of a content, in hex. */
export function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Makes the programs folder (0700), refusing one that is a link or not a folder. */
function ensureDir(stateDir: string): string {
  const dir = programsDir(stateDir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw writeError(e, dir, 'the folder of kept programs');
  }
  const st = lstatSync(dir);
  if (!st.isDirectory())
    throw new UserError(
      `${dir} is not a folder (a link, or a file), so gpuq cannot keep submitted programs there.`,
      EXIT.ledger,
      `Move it aside (mv '${dir}' '${dir}.moved'), then run the command again.`,
    );
  return dir;
}

/**
 * Keeps `content` (a program about to be submitted) and returns where. An existing copy of the
 * same content is reused when it is a regular file of the right size; anything else under its
 * name is replaced atomically (through a temp file of its own, so concurrent submits never
 * share one).
 */
export function keepProgram(stateDir: string, content: Buffer): KeptProgram {
  const dir = ensureDir(stateDir);
  const sha256 = sha256Of(content);
  const path = join(dir, sha256);
  try {
    const st = lstatSync(path);
    if (st.isFile() && st.size === content.length) {
      // Its time says when it was last kept: prune leaves a copy kept lately (a submit under way).
      try {
        const now = new Date();
        utimesSync(path, now, now);
      } catch {
        // a copy whose time cannot be set is still the right content
      }
      return { sha256, bytes: content.length, path };
    }
  } catch {
    // not kept yet
  }
  const tmp = join(dir, `.${sha256}.${randomBytes(6).toString('hex')}.tmp`);
  writePrivateFileAtomic(path, content, 'a kept program', tmp);
  return { sha256, bytes: content.length, path };
}

/**
 * Reads a kept copy back, checked: a regular file (never through a link) of at most `maxBytes`
 * whose content still has its hash. Null when there is no copy; a UserError when it is not
 * what was kept.
 */
export function readKeptProgram(stateDir: string, sha256: string, maxBytes: number): Buffer | null {
  const path = keptProgramPath(stateDir, sha256);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw damaged(path, `it cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw damaged(path, 'it is not a regular file');
    if (st.size > maxBytes) throw damaged(path, `it is larger than the ${maxBytes} bytes kept`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    const content = buf.subarray(0, off);
    if (sha256Of(content) !== sha256) throw damaged(path, 'its content no longer matches what was submitted');
    return content;
  } finally {
    closeSync(fd);
  }
}

function damaged(path: string, why: string): UserError {
  return new UserError(
    `the kept copy ${path} cannot be used: ${why}.`,
    EXIT.usage,
    'Submit the program again with: gpuq submit FILE',
  );
}

/**
 * Removes the kept copies of these hashes (what no job in the ledger names any more) and returns
 * the bytes freed. A copy already gone is skipped.
 */
export function forgetPrograms(stateDir: string, hashes: Iterable<string>): number {
  let freed = 0;
  for (const sha of hashes) {
    if (!SHA256_HEX.test(sha)) continue;
    const path = join(programsDir(stateDir), sha);
    try {
      const st = lstatSync(path);
      unlinkSync(path);
      if (st.isFile()) freed += st.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(e, path, 'a kept program');
    }
  }
  return freed;
}
