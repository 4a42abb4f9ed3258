/**
 * Feeds the watch view's reducer from the event stream in batches: log lines and samples wait up
 * to `batchMs` so a chatty job redraws a few times a second, not per chunk; state, verdict and
 * connection changes go at once.
 */
import { useEffect, useRef } from 'react';
import type { WatchEvent } from './events.js';
import type { WatchAction } from './model.js';

/** Receives the stream: `event` for each watch event, `end` once when it finishes or fails. */
export interface WatchSink {
  event: (e: WatchEvent) => void;
  end: (error?: unknown) => void;
}

/** Starts feeding a sink and returns how to stop. Must be stable across renders. */
export type Subscribe = (sink: WatchSink) => () => void;

export interface BatchOptions {
  /** How long log lines and samples may wait to be drawn together; 0 dispatches at once. */
  batchMs: number;
  /** The clock (ms since the epoch), to date a reconnect the stream did not date. */
  now: () => number;
  /** Told, after the end has been dispatched, that the stream failed (the view leaves with the error). */
  onFailed: (error: Error) => void;
}

/**
 * Subscribes while mounted (again when `subscribe` or `batchMs` change) and dispatches the events
 * as actions, batched; the stream's end becomes a `source/end` action.
 */
export function useBatchedEvents(
  subscribe: Subscribe,
  dispatch: (action: WatchAction) => void,
  { batchMs, now, onFailed }: BatchOptions,
): void {
  // The latest callbacks, read when events arrive, so a new closure does not resubscribe.
  const nowRef = useRef(now);
  nowRef.current = now;
  const onFailedRef = useRef(onFailed);
  onFailedRef.current = onFailed;

  useEffect(() => {
    let live = true;
    let queue: WatchAction[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    let soon = false;
    const flush = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      soon = false;
      if (!live || queue.length === 0) return;
      const actions = queue;
      queue = [];
      dispatch(actions.length === 1 ? (actions[0] as WatchAction) : { type: 'batch', actions });
    };
    const push = (a: WatchAction): void => {
      if (!live) return;
      queue.push(a);
      const urgent = batchMs <= 0 || (a.type !== 'log' && a.type !== 'sample');
      if (urgent && !soon) {
        soon = true;
        queueMicrotask(flush);
      } else if (!urgent && !soon && timer === null) {
        timer = setTimeout(flush, batchMs);
      }
    };
    const stop = subscribe({
      event: (e) => {
        if (e.type === 'connection' && e.status === 'reconnecting' && e.at === undefined) {
          push({ ...e, at: nowRef.current() });
        } else {
          push(e);
        }
      },
      end: (error) => {
        const message = error === undefined ? null : error instanceof Error ? error.message : String(error);
        push({ type: 'source/end', error: message });
        if (error !== undefined && live) {
          queueMicrotask(() => onFailedRef.current(error instanceof Error ? error : new Error(String(error))));
        }
      },
    });
    return () => {
      live = false;
      if (timer !== null) clearTimeout(timer);
      stop();
    };
  }, [subscribe, dispatch, batchMs]);
}
