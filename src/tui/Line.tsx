/**
 * Draws rows of styled segments (lines.ts) and log lines, one terminal row each.
 */
import { Text } from 'ink';
import type { LogLine } from './model.js';
import type { Row } from './lines.js';

/** One row; long rows are cut at the edge rather than wrapped, so heights stay exact. */
export function Line({ row, color }: { row: Row; color: boolean }) {
  if (row.every((s) => s.text === '')) return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {row.map((s, i) => (
        <Text
          key={i}
          {...(color && s.color ? { color: s.color } : {})}
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
export function LogRow({ line, color }: { line: LogLine; color: boolean }) {
  const err = line.stream === 'stderr';
  return (
    <Text wrap="truncate-end">
      <Text {...(color && err ? { color: 'red' } : {})} bold={err}>
        {err ? '! ' : '  '}
      </Text>
      {line.text === '' ? ' ' : line.text}
    </Text>
  );
}
