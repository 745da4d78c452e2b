import { commands, globalOptions, type CommandSpec, type OptionSpec } from './spec.js';

const EXIT_CODES = `Exit codes:
  0    success (for up: mosh-client's own exit code)
  1    a host, key, port or program was not as needed (the message says which and how to fix it)
  2    the config file or the command line is wrong
  70   a bug in moshctl (an unexpected error; run again with --debug and report it)
  130  interrupted by Ctrl-C during set-up (128+N for signal N: 143 SIGTERM, 129 SIGHUP), after teardown`;

function optionLines(options: Record<string, OptionSpec>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
    return `  ${flag.padEnd(22)} ${o.help}`;
  });
}

export function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'moshctl: mosh sessions through bastions, from a checked-in moshproxy.yaml',
    '',
    'Usage: moshctl [-f FILE]... COMMAND [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    ...optionLines(globalOptions),
    '',
    EXIT_CODES,
    '',
    'Run "moshctl COMMAND --help" for a command\'s options.',
    '',
  ].join('\n');
}

export function commandHelp(c: CommandSpec): string {
  return [
    `Usage: ${c.usage}`,
    '',
    c.description,
    '',
    'Options:',
    ...optionLines(c.options),
    ...optionLines(globalOptions),
    '',
    EXIT_CODES,
    '',
  ].join('\n');
}
