/**
 * Draws rows of styled segments (lines.ts) and log lines, one terminal row each.
 */
import { Text } from 'ink';
import { memo } from 'react';
import type { Tone } from '../core/present.js';
import type { LogLine } from './model.js';
import type { Row } from './lines.js';

const INK_COLORS: Record<Tone, string> = {
  ok: 'green',
  active: 'cyan',
  waiting: 'yellow',
  warn: 'yellow',
  bad: 'red',
  muted: 'gray',
  info: 'cyan',
  accent: 'magenta',
};

/** The ink colour of a tone: the live view's one mapping (the CLI's is in cli/style.ts). */
export function inkColor(t: Tone): string {
  return INK_COLORS[t];
}

/** One row; long rows are cut at the edge rather than wrapped, so heights stay exact. */
function LineImpl({ row, color }: { row: Row; color: boolean }) {
  if (row.every((s) => s.text === '')) return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {row.map((s, i) => (
        <Text
          key={i}
          {...(color && s.tone ? { color: inkColor(s.tone) } : {})}
          bold={s.bold ?? false}
          dimColor={s.dim ?? false}
          inverse={s.inverse ?? false}
        >
          {s.text}
        </Text>
      ))}
    </Text>
  );
}

/** One log line: stderr gets a red "!" in the margin, stdout a blank one. */
function LogRowImpl({ line, color }: { line: LogLine; color: boolean }) {
  const err = line.stream === 'stderr';
  return (
    <Text wrap="truncate-end">
      <Text {...(color && err ? { color: inkColor('bad') } : {})} bold={err}>
        {err ? '! ' : '  '}
      </Text>
      {line.text === '' ? ' ' : line.text}
    </Text>
  );
}

/** Whether two rows draw the same: then React (and ink's layout) skip the row. */
function sameRow(a: Row, b: Row): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  return a.every((s, i) => {
    const t = b[i] as Row[number];
    return s.text === t.text && s.tone === t.tone && s.bold === t.bold && s.dim === t.dim && s.inverse === t.inverse;
  });
}

/** One row, redrawn only when its text or style changes (the view redraws every second). */
export const Line = memo(LineImpl, (a, b) => a.color === b.color && sameRow(a.row, b.row));

/** One log line, redrawn only when it is another line. */
export const LogRow = memo(
  LogRowImpl,
  (a, b) => a.color === b.color && a.line.seq === b.line.seq && a.line.text === b.line.text,
);
