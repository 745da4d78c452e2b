// mosh.session in the file: the schema takes none, tmux or screen, globally
// and per host; resolve fills in none and lets a host's own value win; the
// resolved view and the plan both show it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { schemaPath } from '../../src/config/schema.js';
import { sessionKeepers } from '../../src/config/types.js';
import { run, tempTree } from './helpers.js';

const file = (yaml: string): string => join(tempTree({ 'moshproxy.yaml': yaml }), 'moshproxy.yaml');

describe('mosh.session', () => {
  it('takes in the schema exactly the values the code knows', () => {
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as {
      definitions: { mosh: { properties: { session: { enum: string[] } } } };
    };
    expect(schema.definitions.mosh.properties.session.enum).toEqual([...sessionKeepers]);
  });

  it('is none unless set; a host’s own mosh.session overrides the file’s', () => {
    const { config } = loadConfig(
      [
        file(
          [
            'version: 1',
            'mosh: {session: tmux}',
            'hosts:',
            '  a: {address: a.example.org}',
            '  b: {address: b.example.org, mosh: {session: screen}}',
            '  c: {address: c.example.org, mosh: {session: none, locale: en_US.UTF-8}}',
            '',
          ].join('\n'),
        ),
      ],
      {},
    );
    expect(Object.values(config.hosts).map((h) => [h.name, h.mosh.session])).toEqual([
      ['a', 'tmux'],
      ['b', 'screen'],
      ['c', 'none'],
    ]);
    const { config: plain } = loadConfig([file('version: 1\nhosts:\n  a: {address: x}\n')], {});
    expect(plain.hosts.a?.mosh.session).toBe('none');
  });

  it.each([
    ['mosh:\n  session: byobu\nhosts:\n  a: {address: x}\n', '3:12: mosh.session: "byobu" is not supported'],
    [
      'hosts:\n  a: {address: x, mosh: {session: "tmux; id"}}\n',
      'hosts.a.mosh.session: "tmux; id" is not supported',
    ],
    ['mosh:\n  session: true\nhosts:\n  a: {address: x}\n', 'mosh.session: true is not supported'],
    [
      'mosh:\n  sesion: tmux\nhosts:\n  a: {address: x}\n',
      'unknown key "sesion" in mosh\n  hint: did you mean "session"?',
    ],
  ])('refuses %j', async (yaml, message) => {
    const r = await run(['validate'], { cwd: tempTree({ 'moshproxy.yaml': `version: 1\n${yaml}` }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    if (!message.startsWith('unknown')) expect(r.stderr).toContain('hint: one of none, tmux, screen');
  });

  it('shows in config --resolved and in the plan', async () => {
    const cwd = tempTree({
      'moshproxy.yaml': 'version: 1\nmosh: {session: tmux}\nhosts:\n  box: {address: box.example.org}\n',
    });
    const resolved = await run(['config', '--resolved'], { cwd });
    expect(resolved.stdout).toContain('"session":"tmux"');
    const plan = await run(['plan', 'box'], { cwd });
    expect(plan.stdout).toContain(
      'runs the login shell in tmux session moshctl-box, or attaches to that session',
    );
    const json = JSON.parse((await run(['plan', 'box', '--json'], { cwd })).stdout) as {
      steps: { kind: string; session?: unknown }[];
    };
    expect(json.steps.find((s) => s.kind === 'server')?.session).toEqual({
      program: 'tmux',
      name: 'moshctl-box',
    });
  });
});
