/**
 * `submit --include`: what is uploaded besides the program, checked on this machine before
 * anything is recorded, and the stream (core/file-frames) that carries it all over one channel.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { usageError } from '../core/errors.js';
import { dirHeader, endHeader, fileHeader } from '../core/file-frames.js';
import { firstClash, nameProblem, shownName } from '../core/file-names.js';
import { formatBytes } from '../core/format.js';

/** One thing uploaded into the job's work/ folder. */
export interface UploadItem {
  /** Where it is on this machine. */
  local: string;
  /** Where it lands, relative to work/. */
  name: string;
  kind: 'file' | 'dir';
  size: number;
  executable: boolean;
  /** Open without following a link (every include; the entry file is opened as the user named it). */
  noFollow: boolean;
}

export interface UploadPlan {
  items: UploadItem[];
  files: number;
  totalBytes: number;
}

/** Most files (and folders) one submit uploads. */
export const MAX_UPLOAD_ENTRIES = 100_000;

/**
 * Lists the program and each `--include` as they will land in work/: an include lands under its
 * own last name (`data/` → `data/…`, `../lib/util.py` → `util.py`) next to the program. Refuses
 * (exit 2) a missing path, a symbolic link anywhere (links are never followed), a special file,
 * an unsafe name, two things landing on one name, and more than `maxBytes` in all.
 */
export function planUploads(
  entry: { path: string; name: string; executable: boolean; size: number },
  includes: readonly string[],
  cwd: string,
  maxBytes: number,
): UploadPlan {
  const items: UploadItem[] = [
    {
      local: entry.path,
      name: entry.name,
      kind: 'file',
      size: entry.size,
      executable: entry.executable,
      noFollow: false,
    },
  ];
  const add = (local: string, name: string, shown: string) => {
    const why = nameProblem(name);
    if (why) throw usageError(`--include ${shown}: the name ${shownName(name)} ${why}.`, 'Rename it, or leave it out.');
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(local);
    } catch {
      throw usageError(`--include ${shown}: no such file or folder.`, 'Check the path and try again.');
    }
    if (items.length >= MAX_UPLOAD_ENTRIES)
      throw usageError(`--include: more than ${MAX_UPLOAD_ENTRIES} files and folders.`, 'Pack them into an archive.');
    if (st.isSymbolicLink())
      throw usageError(
        `--include ${shown}: ${local} is a symbolic link; gpuq does not follow links.`,
        'Include what it points to instead, or copy it in place of the link.',
      );
    if (st.isDirectory()) {
      items.push({ local, name, kind: 'dir', size: 0, executable: false, noFollow: true });
      for (const child of readdirSync(local).sort()) add(join(local, child), `${name}/${child}`, shown);
    } else if (st.isFile()) {
      items.push({ local, name, kind: 'file', size: st.size, executable: (st.mode & 0o100) !== 0, noFollow: true });
    } else throw usageError(`--include ${shown}: ${local} is not a regular file or folder.`);
  };
  for (const arg of includes) {
    const local = resolve(cwd, arg);
    const base = basename(local);
    if (base === '') throw usageError(`--include ${arg}: name a file or folder below /, not / itself.`);
    add(local, base, arg);
  }
  const clash = firstClash(items);
  if (clash !== null)
    throw usageError(
      `--include: two things would land on ${shownName(clash)} in the job's folder` +
        `${clash === entry.name ? ' (the program itself)' : ''}.`,
      'Each include lands under its own last name next to the program: rename one, or include its parent folder.',
    );
  const totalBytes = items.reduce((n, i) => n + i.size, 0);
  if (totalBytes > maxBytes)
    throw usageError(
      `the upload is ${formatBytes(totalBytes)} (the program and its --include files), ` +
        `over the ${formatBytes(maxBytes)} limit.`,
      'Leave large data on the node, or raise defaults.maxUploadSize in the config.',
    );
  return { items, files: items.filter((i) => i.kind === 'file').length, totalBytes };
}

/**
 * The upload as a frame stream, read from disk as the link takes it. A file that shrank since
 * it was listed fails the upload (a usage error naming it); one that grew is sent as listed.
 */
export async function* uploadStream(
  plan: UploadPlan,
  onProgress?: (done: number, total: number) => void,
): AsyncGenerator<Buffer> {
  let done = 0;
  for (const item of plan.items) {
    if (item.kind === 'dir') {
      yield dirHeader(item.name);
      continue;
    }
    yield fileHeader(item.name, item.size, item.executable);
    const fh = await open(item.local, fsc.O_RDONLY | (item.noFollow ? fsc.O_NOFOLLOW : 0) | fsc.O_NONBLOCK).catch(
      (e: Error) => {
        throw usageError(`could not read ${item.local} to upload it: ${e.message}`);
      },
    );
    try {
      let left = item.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0)
          throw usageError(`${item.local} shrank while it was being uploaded.`, 'Submit again once it is written.');
        left -= bytesRead;
        done += bytesRead;
        yield buf.subarray(0, bytesRead);
        onProgress?.(done, plan.totalBytes);
      }
    } finally {
      await fh.close();
    }
  }
  onProgress?.(plan.totalBytes, plan.totalBytes);
  yield endHeader(plan.files);
}
