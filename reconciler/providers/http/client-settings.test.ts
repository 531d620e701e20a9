import { describe, expect, it } from 'vitest';
import { passThroughSettings, withSignal } from './client-settings.ts';

describe('client settings', () => {
  it('passes on only the HTTP settings that were set', () => {
    const random = () => 0.5;
    expect(passThroughSettings({ timeoutMs: 10, random, concurrency: undefined })).toEqual({ timeoutMs: 10, random });
    expect(passThroughSettings({})).toEqual({});
  });

  it('adds a signal only when the call has one', () => {
    const signal = new AbortController().signal;
    expect(withSignal({ signal })).toEqual({ signal });
    expect(withSignal({})).toEqual({});
  });
});
