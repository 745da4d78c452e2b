// The fish completion script: `complete` lines whose conditions ask one
// function, __moshctl_parse, where on the line the cursor is. fish expands a
// `complete -a` argument when completing, so each value in it is quoted twice:
// once for the script, once for that expansion.
import type { CommandModel, CompletionModel, OptionModel } from './model.js';
import { spellings } from './model.js';

export function fishQuote(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

const fishList = (values: readonly string[]): string => fishQuote(values.map(fishQuote).join(' '));

function completeOption(o: OptionModel, condition: string | undefined): string {
  const parts = ['complete -c moshctl'];
  if (condition) parts.push(`-n ${fishQuote(condition)}`);
  if (o.short) parts.push(`-s ${fishQuote(o.short)}`);
  parts.push(`-l ${fishQuote(o.long)}`);
  const v = o.value;
  if (v?.kind === 'file') parts.push('-r -F');
  else if (v?.kind === 'list') parts.push(`-x -a ${fishList(v.values)}`);
  else if (v) parts.push('-x');
  parts.push(`-d ${fishQuote(o.brief)}`);
  return parts.join(' ');
}

/** `case` arms of __moshctl_parse that skip an option's value: the global ones always, a command's only after it. */
function skipArms(m: CompletionModel): string[] {
  const arms = m.global
    .filter((o) => o.value)
    .map((o) => `            case ${spellings(o).map(fishQuote).join(' ')}\n                set skip 1`);
  const byOption = new Map<string, string[]>();
  for (const c of m.commands) {
    for (const o of c.options.filter((x) => x.value)) {
      for (const s of spellings(o)) byOption.set(s, [...(byOption.get(s) ?? []), c.name]);
    }
  }
  for (const [s, names] of byOption) {
    arms.push(
      `            case ${fishQuote(s)}\n                contains -- "$cmd" ${names.map(fishQuote).join(' ')}; and set skip 1`,
    );
  }
  return arms;
}

function positionalArms(commands: CommandModel[]): string[] {
  return commands
    .filter((c) => c.positional)
    .map(
      (c) =>
        `        case ${fishQuote(c.name)}\n            test "$s[2]" -lt ${c.max}; and test "$argv[1]" = ${c.positional}`,
    );
}

export function fishScript(m: CompletionModel, version: string): string {
  const config = m.global.find((o) => o.long === 'file');
  const configSpellings = config ? spellings(config) : [];
  const short = config?.short ? `-${config.short}` : '--file';
  const lines = [
    ...m.global.map((o) => completeOption(o, undefined)),
    ...m.commands.flatMap((c) => c.options.map((o) => completeOption(o, `__moshctl_using ${c.name}`))),
  ];
  return `# fish completion for moshctl ${version}, printed by \`moshctl completion fish\`.
# Load it in ~/.config/fish/config.fish:   moshctl completion fish | source
# or save it, to be loaded when first needed:
#   moshctl completion fish > ~/.config/fish/completions/moshctl.fish
# Commands and options are this version's: print it again after upgrading.

# Prints three lines about the words before the cursor: the command ("" when
# none yet), how many arguments it has, and "rest" after a --.
function __moshctl_parse
    set -l cmd ''
    set -l npos 0
    set -l skip 0
    for t in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --
                printf '%s\\n' "$cmd" $npos rest
                return
${skipArms(m).join('\n')}
            case '-*'
            case '*'
                if test -z "$cmd"
                    set cmd $t
                else
                    set npos (math $npos + 1)
                end
        end
    end
    printf '%s\\n' "$cmd" $npos ''
end

function __moshctl_needs_command
    set -l s (__moshctl_parse)
    test -z "$s[1]"; and test -z "$s[3]"
end

# True when the command typed is one of $argv, before any --.
function __moshctl_using
    set -l s (__moshctl_parse)
    test -z "$s[3]"; and contains -- "$s[1]" $argv
end

# True when the word at the cursor is an argument of kind $argv[1] (hosts or shells).
function __moshctl_positional
    set -l s (__moshctl_parse)
    test -z "$s[3]"; or return 1
    switch $s[1]
${positionalArms(m.commands).join('\n')}
        case '*'
            return 1
    end
end

# Host names as moshctl sees them now, with the -f files typed on this line.
function __moshctl_hosts
    set -l files
    set -l next 0
    for t in (commandline -opc)[2..-1]
        if test $next = 1
            set -a files ${fishQuote(short)} (string replace -r '^~/' "$HOME/" -- $t)
            set next 0
            continue
        end
        switch $t
            case --
                break
${configSpellings.length > 0 ? `            case ${configSpellings.map(fishQuote).join(' ')}\n                set next 1\n            case ${fishQuote(`--${config?.long ?? ''}=*`)}${config?.short ? ` ${fishQuote(`${short}*`)}` : ''}\n                set -a files $t\n` : ''}        end
    end
    command moshctl $files completion ${fishQuote(m.hostsArg)} 2>/dev/null
end

# No file names unless an option takes a file.
complete -c moshctl -f
${m.commands.map((c) => `complete -c moshctl -n __moshctl_needs_command -a ${fishList([c.name])} -d ${fishQuote(c.summary)}`).join('\n')}
${lines.join('\n')}
complete -c moshctl -n '__moshctl_positional hosts' -a '(__moshctl_hosts)'
complete -c moshctl -n '__moshctl_positional shells' -a ${fishList(m.shells)}
`;
}
