// Whether --debug is on, and the masking of session keys in what it prints:
// apart from debug-chain.ts so the CLI's start (main.ts, report.ts) loads these
// few lines, not the chain decorator and what it imports (node:net among them).

/** mosh-server's ready line and the variable mosh-client reads the key from. */
const KEY_PATTERNS: [RegExp, string][] = [
  [/(MOSH CONNECT \d+ )[A-Za-z0-9/+]{22}/g, '$1<key>'],
  [/(MOSH_KEY=)('[^']*'|"[^"]*"|[^\s'"]*)/g, '$1<key>'],
];

export function maskSecrets(text: string): string {
  return KEY_PATTERNS.reduce((t, [pattern, replacement]) => t.replace(pattern, replacement), text);
}

type Env = Readonly<Record<string, string | undefined>>;

/** MOSHCTL_DEBUG=1; the CLI sets it for the commands it runs when given --debug. */
export function debugEnabled(env: Env): boolean {
  return env.MOSHCTL_DEBUG !== undefined && env.MOSHCTL_DEBUG !== '' && env.MOSHCTL_DEBUG !== '0';
}
