/**
 * The watch view's keyboard: maps each key through `commandForKey` (pure, in keys.ts) and performs
 * the command: leave, a reducer action, the confirmed cancel, or opening (and loading) the diagnosis.
 */
import { useInput } from 'ink';
import { useCallback, useRef } from 'react';
import type { Job } from '../core/types.js';
import { commandForKey, type KeyInfo, type Viewports } from './keys.js';
import { isDone, type Peaks, type WatchAction, type WatchState } from './model.js';

export interface WatchKeyHandlers {
  dispatch: (action: WatchAction) => void;
  /** Leaves the view (`q`, Ctrl-C) with the state the key was pressed in. */
  leave: (state: WatchState) => void;
  /** Sends the cancel after the user confirmed it. */
  onCancel: () => Promise<void>;
  /** Loads the diagnosis text for the panel. */
  loadDiagnosis: (job: Job | null, peaks: Peaks | null) => Promise<string>;
  /** False when stdin cannot be put in raw mode (ink's useInput would throw). */
  isActive: boolean;
}

/** Handles the keys of `gpuq watch` for the current state and the scrollable areas' sizes. */
export function useWatchKeys(
  state: WatchState,
  viewports: Viewports,
  { dispatch, leave, onCancel, loadDiagnosis, isActive }: WatchKeyHandlers,
): void {
  // The handler reads the state last drawn through a ref and stays subscribed for good: ink
  // re-subscribes a changed handler only in an effect after the frame is drawn, so a key typed
  // right after a frame (the `y` of a cancel prompt) would reach the previous state's handler.
  const latest = useRef({ state, viewports, dispatch, leave, onCancel, loadDiagnosis });
  latest.current = { state, viewports, dispatch, leave, onCancel, loadDiagnosis };
  const onKey = useCallback((input: string, key: KeyInfo) => {
    const { state, viewports, dispatch, leave, onCancel, loadDiagnosis } = latest.current;
    const cmd = commandForKey(state, input, key, viewports);
    switch (cmd.kind) {
      case 'none':
        return;
      case 'leave':
        leave(state);
        return;
      case 'dispatch':
        dispatch(cmd.action);
        return;
      case 'cancel':
        dispatch({ type: 'cancel/confirm' });
        onCancel().then(
          () => dispatch({ type: 'cancel/sent' }),
          (err: unknown) =>
            dispatch({ type: 'cancel/failed', message: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case 'diagnosis': {
        const d = state.ui.diagnosis;
        dispatch({ type: 'diagnosis/open' });
        if (isDone(state.job) && (d.status === 'idle' || d.status === 'error')) {
          loadDiagnosis(state.job, state.peaks).then(
            (text) => dispatch({ type: 'diagnosis/loaded', text }),
            (err: unknown) =>
              dispatch({ type: 'diagnosis/failed', message: err instanceof Error ? err.message : String(err) }),
          );
        }
        return;
      }
    }
  }, []);
  useInput(onKey, { isActive });
}
