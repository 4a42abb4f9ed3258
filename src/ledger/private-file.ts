/**
 * The ledger's files on disk. The ledger holds `--env` values, and GPUQ_HOME may sit in a folder
 * others can write to, so every file written here (the live file, its `.bak`, the archive and
 * their temp files) is created mode 0600 whatever the umask, is never written through a symbolic
 * link, and a full or failing disk is a user error (exit 5) that leaves the previous version whole.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';

const PRIVATE = 0o600;
/** Never through a link; never blocking on a FIFO someone put in the file's place. */
const SAFE = (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | SAFE;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | SAFE;

/**
 * The temp file a write of `path` goes through: `.NAME.PID.RANDOM.tmp` beside it, unique to this
 * write. A fixed name collided when two processes took over a stale lock at once (one unlinked
 * or renamed the other's temp file: ENOENT); a unique one is created exclusively, never planted.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `text` atomically: a 0600 temp file beside it with a name of its own
 * (tempPathFor), created exclusively and never through a link (anything under that name is
 * unlinked first), written and closed, then renamed over `path` (a rename replaces a link at
 * `path` itself, never its target). Any failure removes the temp file and leaves `path` as it was.
 * `what` names the file for people ("the ledger"); `tmp` overrides the temp file's name.
 */
export function writePrivateFileAtomic(
  path: string,
  text: string | Buffer,
  what: string,
  tmp: string = tempPathFor(path),
): void {
  let fd: number;
  try {
    fd = createPrivate(tmp);
  } catch (e) {
    throw writeError(e, tmp, what);
  }
  try {
    // No fsync, as lowdb before: it cost ~7 ms a write here, and a full disk fails the write
    // itself on local file systems (a network one reports it at close, which is checked).
    writeAll(fd, typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  } catch (e) {
    closeQuietly(fd);
    unlinkQuietly(tmp);
    throw writeError(e, path, what);
  }
  try {
    closeSync(fd);
  } catch (e) {
    unlinkQuietly(tmp);
    throw writeError(e, path, what);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkQuietly(tmp);
    throw writeError(e, path, what);
  }
}

/**
 * Appends `text` to `path`, creating it 0600, never through a link nor into anything but a
 * regular file. A failed write cuts the file back to its previous length, so a torn line never
 * glues itself to the next append (the archive is read line by line).
 */
export function appendPrivateFile(path: string, text: string, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, APPEND, PRIVATE);
  } catch (e) {
    throw writeError(e, path, what);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTFILE' });
    if ((st.mode & 0o777) !== PRIVATE) fchmodQuietly(fd); // created under the umask, or made by hand
    try {
      writeAll(fd, Buffer.from(text, 'utf8'));
    } catch (e) {
      try {
        ftruncateSync(fd, st.size);
      } catch {
        // the reader skips a torn last line; nothing more can be done on a failing disk
      }
      throw e;
    }
  } catch (e) {
    closeQuietly(fd);
    throw writeError(e, path, what);
  }
  try {
    closeSync(fd);
  } catch (e) {
    throw writeError(e, path, what);
  }
}

/** Opens a new 0600 file at `tmp` for writing, replacing whatever had that name (not its target). */
function createPrivate(tmp: string): number {
  let fd: number;
  try {
    fd = openSync(tmp, CREATE_NEW, PRIVATE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    unlinkSync(tmp);
    fd = openSync(tmp, CREATE_NEW, PRIVATE);
  }
  // The umask can only take bits away from 0600, and one like 0277 takes the owner's write:
  // set the mode itself.
  try {
    fchmodSync(fd, PRIVATE);
  } catch (e) {
    closeQuietly(fd);
    unlinkQuietly(tmp);
    throw e;
  }
  return fd;
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing; the first error is the one to report
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already, or the folder refuses: the original error is reported
  }
}

function fchmodQuietly(fd: number): void {
  try {
    fchmodSync(fd, PRIVATE);
  } catch {
    // not ours (a shared folder): its owner decides its mode
  }
}

/**
 * A write error as the user error it is (exit 5, the file, what to do), or `e` itself when it
 * is none of the known ones (a bug).
 */
export function writeError(e: unknown, file: string, what: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const dir = dirname(file);
  const unchanged = 'the ledger is unchanged';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(
        `could not write ${what} ${file}: the disk is full (${code}); ${unchanged}.`,
        EXIT.ledger,
        `Free some space on the file system that holds ${dir} (df -h '${dir}'), then run the command again.`,
      );
    case 'EIO':
    case 'EROFS':
    case 'EFBIG':
      return new UserError(
        `could not write ${what} ${file} ` +
          `(${code}: ${code === 'EROFS' ? 'a read-only file system' : 'the disk failed the write'}); ${unchanged}.`,
        EXIT.ledger,
        `Check the file system that holds ${dir} (mount, dmesg), then run the command again.`,
      );
    case 'ELOOP':
      return new UserError(
        `${file} is a symbolic link, and gpuq never writes ${what} through a link; ${unchanged}.`,
        EXIT.ledger,
        `Remove the link (rm '${file}'), and keep GPUQ_HOME in a folder only you can write to.`,
      );
    case 'ENOTFILE':
    case 'ENXIO':
    case 'EISDIR':
      return new UserError(
        `${file} is not a regular file, so gpuq cannot write ${what} there; ${unchanged}.`,
        EXIT.ledger,
        `Move it aside (mv '${file}' '${file}.moved'), then run the command again.`,
      );
    case 'EACCES':
    case 'EPERM':
      return new UserError(
        `could not write ${what} ${file} (${code}); ${unchanged}.`,
        EXIT.ledger,
        `Check that ${dir} and the files in it are yours to write (ls -la '${dir}'); ` +
          `another user's file there cannot be replaced.`,
      );
    default:
      return e;
  }
}
