import { describe, expect, it } from 'vitest';
import { interpolate } from '../../src/config/interpolate.js';

const env = { USER: 'alice', EMPTY: '', PORT: '2222' };

describe('interpolate', () => {
  it.each([
    ['${USER}', 'alice'],
    ['$USER@host', 'alice@host'],
    ['${UNSET}', ''],
    ['${UNSET:-bob}', 'bob'],
    ['${EMPTY:-bob}', 'bob'],
    ['${EMPTY-bob}', ''],
    ['${UNSET-bob}', 'bob'],
    ['${USER:?need a user}', 'alice'],
    ['cost $$5', 'cost $5'],
    ['$${USER}', '${USER}'],
    ['a${PORT}b${USER}', 'a2222balice'],
    ['no variables', 'no variables'],
  ])('%s → %s', (input, expected) => {
    expect(interpolate(input, env)).toEqual({ value: expected, errors: [] });
  });

  it('reports an unset required variable with its message', () => {
    const r = interpolate('${TOKEN:?ask the admin}', env);
    expect(r.errors).toEqual([
      {
        message: 'required variable TOKEN is unset: ask the admin',
        hint: 'set TOKEN in the environment (export TOKEN=...) and run again',
      },
    ]);
  });

  it('treats an empty variable as missing for :? but not for ?', () => {
    expect(interpolate('${EMPTY:?x}', env).errors).toHaveLength(1);
    expect(interpolate('${EMPTY?x}', env).errors).toHaveLength(0);
  });

  it.each(['${USER', 'a $ b', '${1X}', '${USER:+x}'])('reports broken syntax in %s', (input) => {
    expect(interpolate(input, env).errors).toHaveLength(1);
  });
});
