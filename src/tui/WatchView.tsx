/**
 * The live `gpuq watch` screen: header, resources, log tail, verdict banner, diagnosis panel and
 * status line, driven by a stream of watch events and the keyboard.
 */
import { Box, useApp, useStdin, useStdout } from 'ink';
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import type { WatchResult } from './events.js';
import { diagnosisLines, diagnosisTitleRow, logTitleRow, screenLayout, statusRow } from './lines.js';
import { inkColor, Line, LogRow } from './Line.js';
import { tone } from '../core/present.js';
import type { Job } from '../core/types.js';
import { initialWatchState, isDone, logWindow, reduceWatch, type Peaks, type WatchState } from './model.js';
import { type Subscribe, useBatchedEvents } from './useBatchedEvents.js';
import { useWatchKeys } from './useWatchKeys.js';

export type { Subscribe, WatchSink } from './useBatchedEvents.js';

export interface WatchViewProps {
  subscribe: Subscribe;
  /** Called after the user answers 'y' to "cancel job ID?". */
  onCancel: () => Promise<void>;
  /** Text of the full diagnosis, loaded the first time `d` is pressed after the verdict. */
  loadDiagnosis: (job: Job | null, peaks: Peaks | null) => Promise<string>;
  /** Leave by itself once the verdict is in. */
  exitOnDone?: boolean;
  /** The clock (ms since the epoch); tests pin it. */
  now?: () => number;
  /**
   * Redraw after this long without any other redraw, for elapsed time and countdowns (default
   * 1.5 s: longer than the sampler's 1 s, so a sampled job redraws once a second, not twice).
   * 0 disables the timer.
   */
  tickMs?: number;
  /** How long log lines and samples may wait to be drawn together; 0 draws at once (tests). */
  batchMs?: number;
  /** Fixed size (tests); otherwise the terminal's, following resizes. */
  width?: number;
  height?: number;
  /** False draws without colors (NO_COLOR). */
  color?: boolean;
  /** Samples kept for sparklines and log lines kept in memory. */
  historySize?: number;
  logLimit?: number;
  /** Told how the view ended, just before it unmounts. */
  onExit?: (result: WatchResult) => void;
}

/** Columns and rows of the output stream, following 'resize'; fixed values win. */
function useTerminalSize(fixedWidth?: number, fixedHeight?: number): { width: number; height: number } {
  const { stdout } = useStdout();
  const read = useCallback(() => ({ width: stdout.columns || 80, height: stdout.rows || 24 }), [stdout]);
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, read]);
  return { width: fixedWidth ?? size.width, height: fixedHeight ?? size.height };
}

/**
 * Re-renders when nothing else has for `ms`, so elapsed time and countdowns move: a job that
 * samples every second already redraws that often, and then the timer never fires.
 */
function useIdleTick(ms: number): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (ms <= 0) return;
    const timer = setTimeout(() => setTick((n) => n + 1), ms);
    return () => clearTimeout(timer);
  });
}

/** The `gpuq watch` screen; ends through ink's exit with a WatchResult. */
export function WatchView(props: WatchViewProps) {
  const {
    subscribe,
    onCancel,
    loadDiagnosis,
    exitOnDone = false,
    tickMs = 1500,
    batchMs = 200,
    color = true,
    onExit,
  } = props;
  const clock = props.now ?? Date.now;
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();
  const { width, height } = useTerminalSize(props.width, props.height);
  const [state, dispatch] = useReducer(
    reduceWatch,
    { historySize: props.historySize, logLimit: props.logLimit },
    (o): WatchState =>
      initialWatchState({
        ...(o.historySize !== undefined ? { historySize: o.historySize } : {}),
        ...(o.logLimit !== undefined ? { logLimit: o.logLimit } : {}),
      }),
  );
  useIdleTick(tickMs);
  const now = clock();

  const exited = useRef(false);
  const leave = useCallback(
    (left: WatchResult['left'], s: WatchState) => {
      if (exited.current) return;
      exited.current = true;
      const result: WatchResult = {
        left,
        job: s.job,
        cancelRequested: s.ui.cancel === 'sending' || s.ui.cancel === 'sent',
      };
      onExit?.(result);
      exit(result);
    },
    [exit, onExit],
  );

  useBatchedEvents(subscribe, dispatch, {
    batchMs,
    now: clock,
    onFailed: (error) => {
      if (exited.current) return;
      exited.current = true;
      exit(error);
    },
  });

  const done = isDone(state.job);
  useEffect(() => {
    if (exitOnDone && done) leave('done', state);
  }, [exitOnDone, done, leave, state]);

  const layout = screenLayout(state, now, width, height);
  // The page depends only on the diagnosis text, not on every state change.
  // biome-ignore lint/correctness/useExhaustiveDependencies: see the line above
  const diagText = useMemo(() => diagnosisLines(state, width), [state.ui.diagnosis, width]);

  const quit = useCallback((s: WatchState) => leave('quit', s), [leave]);
  useWatchKeys(
    state,
    { logRows: layout.logRows, diagnosisRows: layout.diagnosisRows, diagnosisLines: diagText.length },
    { dispatch, leave: quit, onCancel, loadDiagnosis, isActive: isRawModeSupported },
  );

  const w = Math.max(20, width);
  return (
    <Box flexDirection="column" width={w}>
      {layout.header.map((row, i) => (
        <Line key={`h${i}`} row={row} color={color} />
      ))}
      {state.ui.diagnosis.open ? (
        <DiagnosisPanel
          lines={diagText}
          first={state.ui.diagnosis.scroll}
          rows={layout.diagnosisRows}
          width={w}
          color={color}
        />
      ) : (
        <>
          {layout.resources.map((row, i) => (
            <Line key={`r${i}`} row={row} color={color} />
          ))}
          <LogTail state={state} rows={layout.logRows} width={w} color={color} />
          {layout.banner && state.job?.verdict ? (
            <Box
              flexDirection="column"
              borderStyle="round"
              {...(color ? { borderColor: inkColor(tone(state.job.verdict.class)) } : {})}
              paddingX={1}
              width={w - 1}
            >
              {layout.banner.map((row, i) => (
                <Line key={`b${i}`} row={row} color={color} />
              ))}
            </Box>
          ) : null}
        </>
      )}
      <Line row={statusRow(state, now, w)} color={color} />
    </Box>
  );
}

/** The log title and the window of lines at the current scroll position. */
function LogTail({ state, rows, width, color }: { state: WatchState; rows: number; width: number; color: boolean }) {
  const win = logWindow(state, rows);
  return (
    <>
      <Line row={logTitleRow(state, win, width)} color={color} />
      <Box flexDirection="column" height={rows} width={width - 1} overflow="hidden">
        {win.total === 0 ? (
          <Line row={[{ text: '  (no output yet)', dim: true }]} color={color} />
        ) : (
          win.lines.map((l) => <LogRow key={l.seq} line={l} color={color} />)
        )}
      </Box>
    </>
  );
}

/** The full diagnosis, scrolled to `first`. */
function DiagnosisPanel(p: { lines: string[]; first: number; rows: number; width: number; color: boolean }) {
  const first = Math.max(0, Math.min(p.first, Math.max(0, p.lines.length - p.rows)));
  const shown = p.lines.slice(first, first + p.rows);
  return (
    <>
      <Line row={diagnosisTitleRow(first, shown.length, p.lines.length, p.width)} color={p.color} />
      <Box flexDirection="column" height={p.rows} width={p.width - 1} overflow="hidden">
        {shown.map((text, i) => (
          <Line key={first + i} row={[{ text }]} color={p.color} />
        ))}
      </Box>
    </>
  );
}
