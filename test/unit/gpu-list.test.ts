import { describe, expect, it } from 'vitest';
import { parseGpuList } from '../../src/node/gpu-list.js';

describe('parseGpuList', () => {
  it('reads the indices nvidia-smi listed, sorted, once each', () => {
    expect(parseGpuList('gpu 1\ngpu 0\ngpu 1\nrc 0\n')).toEqual({ gpus: [0, 1], problem: null });
    // a stand-in (or an older driver) that answers more fields than asked: the first is the index
    expect(parseGpuList('gpu 0, GPU-1111, 1234, 37\nrc 0\n')).toEqual({ gpus: [0], problem: null });
  });

  it('says why there is none: missing, failing, timed out, empty, unreadable', () => {
    expect(parseGpuList('missing\n').problem).toMatch(/not installed/);
    expect(parseGpuList('rc 9\n').problem).toMatch(/failed \(exit 9\)/);
    expect(parseGpuList('gpu 0\nrc 124\n')).toEqual({
      gpus: [],
      problem: expect.stringMatching(/did not answer within 5 s/),
    });
    expect(parseGpuList('rc 137\n').problem).toMatch(/did not answer/);
    expect(parseGpuList('rc 0\n').problem).toMatch(/lists no GPU/);
    expect(parseGpuList('').problem).toMatch(/could not be asked/);
  });

  it('ignores lines that are not its own, whatever a broken tool prints', () => {
    expect(parseGpuList('gpu No devices were found\ngpu -1\ngpu 99999\nrc 0\n')).toEqual({
      gpus: [],
      problem: 'nvidia-smi lists no GPU',
    });
  });
});
