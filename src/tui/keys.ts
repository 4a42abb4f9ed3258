/**
 * What each key does in `gpuq watch`, as a pure function of the state, so the key map is tested
 * without a terminal. The view performs the returned command.
 */
import type { UiAction, WatchState } from './model.js';

/** The parts of ink's `Key` this map reads (kept local so this module stays free of ink). */
export interface KeyInfo {
  upArrow?: boolean;
  downArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  escape?: boolean;
  ctrl?: boolean;
}

/** Rows the scrollable areas have now, so paging moves by a screenful. */
export interface Viewports {
  logRows: number;
  diagnosisRows: number;
  /** Lines of the wrapped diagnosis text (0 when none). */
  diagnosisLines: number;
}

export type KeyCommand =
  | { kind: 'none' }
  /** Leave the view; the job keeps running. */
  | { kind: 'leave' }
  | { kind: 'dispatch'; action: UiAction }
  /** 'y' at the prompt: mark the cancel as sending and call onCancel. */
  | { kind: 'cancel' }
  /** Open the diagnosis panel, loading the text first when it is not loaded yet. */
  | { kind: 'diagnosis' };

const NONE: KeyCommand = { kind: 'none' };
const dispatch = (action: UiAction): KeyCommand => ({ kind: 'dispatch', action });

/** Maps one key press to a command, given the state it was pressed in. */
export function commandForKey(state: WatchState, input: string, key: KeyInfo, vp: Viewports): KeyCommand {
  if (key.ctrl && input === 'c') return { kind: 'leave' };
  if (state.ui.cancel === 'confirm') {
    // Only an explicit yes cancels; every other key answers no.
    return input === 'y' || input === 'Y' ? { kind: 'cancel' } : dispatch({ type: 'cancel/dismiss' });
  }
  if (state.ui.diagnosis.open) {
    if (key.escape || input === 'd') return dispatch({ type: 'diagnosis/close' });
    const page = Math.max(1, vp.diagnosisRows - 1);
    const max = Math.max(0, vp.diagnosisLines - vp.diagnosisRows);
    const by = scrollAmount(input, key, page);
    // Positive `by` means "towards older lines" for the log; the diagnosis reads downwards.
    if (by !== null) return dispatch({ type: 'diagnosis/scroll', by: -by, max });
  } else {
    const by = scrollAmount(input, key, Math.max(1, vp.logRows - 1));
    if (by !== null) return dispatch({ type: 'scroll', by, viewport: vp.logRows });
  }
  if (key.ctrl) return NONE;
  switch (input) {
    case 'q':
      return { kind: 'leave' };
    case 'c':
      return dispatch({ type: 'cancel/ask' });
    case 's':
      return dispatch({ type: 'filter/cycle' });
    case 'd':
      return { kind: 'diagnosis' };
    default:
      return key.escape && state.ui.notice !== null ? dispatch({ type: 'notice', text: null }) : NONE;
  }
}

/** Lines to move back (positive) or forward (negative) for a scrolling key, or null for others. */
function scrollAmount(input: string, key: KeyInfo, page: number): number | null {
  if (key.upArrow || input === 'k') return 1;
  if (key.downArrow || input === 'j') return -1;
  if (key.pageUp) return page;
  if (key.pageDown || input === ' ') return -page;
  if (key.home || input === 'g') return Number.POSITIVE_INFINITY;
  if (key.end || input === 'G') return Number.NEGATIVE_INFINITY;
  return null;
}
