/**
 * The byte stream that carries several files over one channel (`--include` up, `gpuq get`
 * down): for each item one line of JSON, then, for a file, exactly its size in bytes. Simpler to
 * read safely than tar: the names are JSON strings (any byte escaped), the sizes explicit, no
 * links, owners or modes beyond 0600/0700. templates/unpack.py reads it on the node and
 * templates/collect.py writes it there.
 *
 * Records: `{"f":NAME,"s":SIZE,"x":0|1}` a file (x: executable) followed by SIZE bytes;
 * `{"d":NAME}` a folder; `{"skip":NAME,"why":TEXT}` something left out (collect only);
 * `{"missing":NAME}` an asked-for path that is not there; `{"end":COUNT}` the end.
 */

/** Longest header line accepted (a name is at most 1 KiB, JSON escapes at most 6×). */
export const FRAME_HEADER_MAX = 16 * 1024;

export type FrameRecord =
  | { kind: 'file'; name: string; size: number; executable: boolean }
  | { kind: 'dir'; name: string }
  | { kind: 'skip'; name: string; why: string }
  | { kind: 'missing'; name: string }
  | { kind: 'end'; count: number };

/** One file's header line, for the upload stream. */
export function fileHeader(name: string, size: number, executable: boolean): Buffer {
  return Buffer.from(`${JSON.stringify({ f: name, s: size, x: executable ? 1 : 0 })}\n`);
}

/** A folder's header line. */
export function dirHeader(name: string): Buffer {
  return Buffer.from(`${JSON.stringify({ d: name })}\n`);
}

/** The last line of a stream. */
export function endHeader(count: number): Buffer {
  return Buffer.from(`${JSON.stringify({ end: count })}\n`);
}

/** Reads one header line as a record; throws on anything else (the stream is then unusable). */
export function parseHeader(line: string): FrameRecord {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('a header line is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a header line is not an object');
  const o = v as Record<string, unknown>;
  const str = (x: unknown) => typeof x === 'string';
  const count = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (str(o.f) && count(o.s)) return { kind: 'file', name: o.f as string, size: o.s as number, executable: o.x === 1 };
  if (str(o.d)) return { kind: 'dir', name: o.d as string };
  if (str(o.skip)) return { kind: 'skip', name: o.skip as string, why: str(o.why) ? (o.why as string) : '' };
  if (str(o.missing)) return { kind: 'missing', name: o.missing as string };
  if (count(o.end)) return { kind: 'end', count: o.end as number };
  throw new Error('a header line is not a known record');
}

export type FrameEvent =
  | { kind: 'record'; record: FrameRecord }
  | { kind: 'data'; chunk: Buffer }
  /** The current file's bytes are complete. */
  | { kind: 'fileEnd' };

/**
 * Splits a frame stream into records and file data, chunk by chunk, holding at most one header
 * line in memory. Throws on a malformed or over-long header, or data after the end record.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private left = 0;
  private inFile = false;
  /** Whether the end record was read. */
  ended = false;

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0) {
      if (this.inFile) {
        const n = Math.min(this.left, buf.length);
        if (n > 0) events.push({ kind: 'data', chunk: buf.subarray(0, n) });
        this.left -= n;
        buf = buf.subarray(n);
        if (this.left === 0) {
          this.inFile = false;
          events.push({ kind: 'fileEnd' });
        }
        continue;
      }
      if (this.ended) throw new Error('data after the end of the stream');
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > FRAME_HEADER_MAX) throw new Error('a header line is too long');
        this.pending = Buffer.from(buf);
        break;
      }
      if (nl > FRAME_HEADER_MAX) throw new Error('a header line is too long');
      const record = parseHeader(buf.subarray(0, nl).toString('utf8'));
      buf = buf.subarray(nl + 1);
      events.push({ kind: 'record', record });
      if (record.kind === 'end') this.ended = true;
      if (record.kind === 'file') {
        if (record.size === 0) events.push({ kind: 'fileEnd' });
        else {
          this.inFile = true;
          this.left = record.size;
        }
      }
    }
    return events;
  }

  /** Whether the stream stopped in the middle of a header or a file. */
  get incomplete(): boolean {
    return this.inFile || this.pending.length > 0 || !this.ended;
  }
}
