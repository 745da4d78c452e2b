// The zsh completion script: one _arguments call for the global options and
// the command, and one per command for what follows it. _arguments reads its
// own little language inside each spec (`--opt=[help]:message:action`), so
// text is escaped for that first and then single-quoted for the shell.
import type { CommandModel, CompletionModel, OptionModel } from './model.js';
import { spellings } from './model.js';

export function zshQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Help inside `[…]`, or a name in a `name:description` pair: a backslash before what _arguments would read. */
const escapeSpec = (s: string): string => s.replace(/[\\[\]:]/g, '\\$&');

/** A value in an action's `(a b c)` list. */
const escapeValue = (s: string): string => s.replace(/[\\\s()[\]:'"$`]/g, '\\$&');

function action(o: OptionModel): string {
  const v = o.value;
  if (!v) return '';
  const message = escapeSpec(o.long);
  if (v.kind === 'file') return `:${message}:_files`;
  if (v.kind === 'list') return `:${message}:(${v.values.map(escapeValue).join(' ')})`;
  return `:${message}: `;
}

/** `-f+` takes `-fX` or `-f X`; `--file=` takes `--file=X` or `--file X`. */
function optionSpecs(o: OptionModel): string[] {
  const others = spellings(o);
  const exclusive = o.repeats ? '*' : others.length > 1 ? `(${others.join(' ')})` : '';
  return others.map((s) => {
    const takes = o.value ? (s.startsWith('--') ? '=' : '+') : '';
    return zshQuote(`${exclusive}${s}${takes}[${escapeSpec(o.brief)}]${action(o)}`);
  });
}

function positionalSpecs(c: CommandModel): string[] {
  const out: string[] = [];
  for (let i = 1; i <= c.max && c.positional; i++) {
    out.push(zshQuote(c.positional === 'hosts' ? `${i}:host:_moshctl_hosts` : `${i}:shell:_moshctl_shells`));
  }
  return out;
}

function commandArm(c: CommandModel): string {
  const specs = [...c.options.flatMap(optionSpecs), ...positionalSpecs(c)];
  return [
    `        (${zshQuote(c.name)})`,
    `          _arguments -s -S : $global${specs.map((s) => ` \\\n            ${s}`).join('')} && ret=0`,
    '          ;;',
  ].join('\n');
}

export function zshScript(m: CompletionModel, version: string): string {
  const config = m.global.find((o) => o.long === 'file');
  const short = config?.short ? `-${config.short}` : '--file';
  const long = `--${config?.long ?? 'file'}`;
  return `#compdef moshctl
# zsh completion for moshctl ${version}, printed by \`moshctl completion zsh\`.
# Load it from ~/.zshrc, after compinit:   source <(moshctl completion zsh)
# or save it as _moshctl in a folder of $fpath, before compinit runs:
#   moshctl completion zsh > ~/.zfunc/_moshctl   (with fpath=(~/.zfunc $fpath) in ~/.zshrc)
# Commands and options are this version's: print it again after upgrading.

# Host names as moshctl sees them now, with the -f files typed on this line.
_moshctl_hosts() {
  local -a hosts files
  local i w
  for ((i = 2; i < _moshctl_current; i++)); do
    w=\${_moshctl_words[i]}
    case $w in
      (${zshQuote(short)}|${zshQuote(long)})
        w=\${(Q)_moshctl_words[i + 1]}
        [[ $w == '~/'* ]] && w=$HOME/\${w#'~/'}
        files+=(${zshQuote(short)} "$w")
        ;;
      (${zshQuote(`${long}=`)}*|${zshQuote(short)}?*) files+=("\${(Q)w}") ;;
      (--) break ;;
    esac
  done
  hosts=(\${(f)"$(command moshctl "\${files[@]}" completion ${zshQuote(m.hostsArg)} 2>/dev/null)"})
  _wanted hosts expl host compadd -a hosts
}

_moshctl_shells() {
  local -a shells
  shells=(${m.shells.map(zshQuote).join(' ')})
  _wanted shells expl shell compadd -a shells
}

_moshctl() {
  local curcontext=$curcontext state state_descr line ret=1
  local -A opt_args
  # _arguments shifts $words past the command; the hosts need the whole line.
  local -a _moshctl_words
  _moshctl_words=("\${words[@]}")
  local _moshctl_current=$CURRENT
  local -a global commands
  global=(${m.global.flatMap(optionSpecs).join(' ')})
  commands=(${m.commands.map((c) => zshQuote(`${escapeSpec(c.name)}:${c.summary}`)).join(' ')})
  # -A: after the command word, options are the command's, parsed by the second _arguments.
  _arguments -C -s -A '-*' : $global '1:command:->command' '(-)*::argument:->argument' && ret=0
  case $state in
    (command)
      _describe -t commands 'moshctl command' commands && ret=0
      ;;
    (argument)
      curcontext=\${curcontext%:*:*}:moshctl-$words[1]:
      case $words[1] in
${m.commands.map(commandArm).join('\n')}
        (*)
          _arguments -s -S : $global && ret=0
          ;;
      esac
      ;;
  esac
  return ret
}

if [[ $funcstack[1] == _moshctl ]]; then
  _moshctl "$@"
else
  compdef _moshctl moshctl
fi
`;
}
