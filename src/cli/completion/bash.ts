// The bash completion script. Every name in it comes from the model (spec.ts)
// and is single-quoted; host names come from `moshctl completion __hosts` at
// TAB time and are compared as plain strings, never through `compgen -W`,
// which would expand `$(…)` in them.
import type { CommandModel, CompletionModel, OptionModel } from './model.js';
import { spellings } from './model.js';

/** One shell word, whatever it holds. */
export function bashQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const words = (list: readonly string[]): string => list.map(bashQuote).join(' ');

/** `case` arms setting `kind` (file, list, text) and `list` for each option of `options` that takes a value. */
function valueArms(options: OptionModel[], indent: string): string[] {
  return options.flatMap((o) => {
    if (!o.value) return [];
    const list = o.value.kind === 'list' ? ` list=(${words(o.value.values)})` : '';
    return [`${indent}${spellings(o).map(bashQuote).join('|')}) kind=${o.value.kind}${list} ;;`];
  });
}

function commandArms(commands: CommandModel[], arm: (c: CommandModel) => string[]): string[] {
  return commands.flatMap((c) => {
    const body = arm(c);
    return body.length === 0 ? [] : [`    ${bashQuote(c.name)})`, ...body, '      ;;'];
  });
}

export function bashScript(m: CompletionModel, version: string): string {
  const config = m.global.find((o) => o.long === 'file');
  const configSpellings = config ? spellings(config) : [];
  const short = config?.short ? `-${config.short}` : undefined;
  return `# bash completion for moshctl ${version}, printed by \`moshctl completion bash\`.
# Load it from ~/.bashrc:   eval "$(moshctl completion bash)"
# or save it, to be loaded when first needed (with the bash-completion package):
#   moshctl completion bash > ~/.local/share/bash-completion/completions/moshctl
# Commands and options are this version's: print it again after upgrading.
# Host names are asked of moshctl at each TAB, so they follow the config in effect.

# Sets kind (file, list or text) and list for option $2 of command $1; fails for a flag.
_moshctl_takes() {
  kind= list=()
  case $2 in
${valueArms(m.global, '    ').join('\n')}
  esac
  [[ -n $kind ]] && return 0
  case $1 in
${commandArms(m.commands, (c) => {
  const arms = valueArms(c.options, '        ');
  return arms.length === 0 ? [] : ['      case $2 in', ...arms, '      esac'];
}).join('\n')}
  esac
  [[ -n $kind ]]
}

# Sets opts to every option of command $1, its own and the global ones.
_moshctl_options() {
  opts=(${words(m.global.flatMap(spellings))})
  case $1 in
${commandArms(m.commands, (c) =>
  c.options.length === 0 ? [] : [`      opts+=(${words(c.options.flatMap(spellings))})`],
).join('\n')}
  esac
}

# Sets what to hosts or shells when argument $2 (from 0) of command $1 is one.
_moshctl_positional() {
  what=
  case $1 in
${commandArms(m.commands, (c) =>
  c.positional ? [`      (($2 < ${c.max})) && what=${c.positional}`] : [],
).join('\n')}
  esac
}

# Adds to COMPREPLY each word after $1 that starts with $1.
_moshctl_add() {
  local prefix=$1 w
  shift
  for w in "$@"; do
    if [[ $w == "$prefix"* ]]; then COMPREPLY+=("$w"); fi
  done
}

# The value of an option: kind and list were set by _moshctl_takes.
_moshctl_value() {
  case $kind in
    file)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$1")
      ;;
    list) _moshctl_add "$1" "\${list[@]}" ;;
  esac
}

_moshctl() {
  local cur w i n join=0 cmd= npos=0 rest=0 expect= kind what
  local -a words=() files=() list=() opts=() hosts=()
  COMPREPLY=()
  # COMP_WORDBREAKS splits --transport=tcp into three words: join them again.
  for ((i = 0; i <= COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    n=\${#words[@]}
    if ((join)); then
      words[n - 1]+=$w
      join=0
    elif [[ $w == = && $n -gt 0 && \${words[n - 1]} == --* && \${words[n - 1]} != *=* ]]; then
      words[n - 1]+=$w
      join=1
    else
      words+=("$w")
    fi
  done
  cur=\${words[\${#words[@]} - 1]}
  for ((i = 1; i < \${#words[@]} - 1; i++)); do
    w=\${words[i]}
    if [[ -n $expect ]]; then
      if [[ $expect == config ]]; then
        # The words are as typed: take off quotes around the path and expand ~/ as the shell will.
        case $w in \\'*\\' | \\"*\\") w=\${w:1:\${#w}-2} ;; '~/'*) w=$HOME/\${w#'~/'} ;; esac
        files+=(${short ? bashQuote(short) : "'--file'"} "$w")
      fi
      expect=
      continue
    fi
    ((rest)) && continue
    case $w in
      --) rest=1 ;;
${configSpellings.length > 0 ? `      ${configSpellings.map(bashQuote).join('|')}) expect=config ;;\n` : ''}${configSpellings.length > 0 ? `      ${bashQuote(`--${config?.long ?? ''}=`)}*${short ? `|${bashQuote(short)}?*` : ''}) files+=("$w") ;;\n` : ''}      -?*) _moshctl_takes "$cmd" "\${w%%=*}" && [[ $w != *=* ]] && expect=$kind ;;
      *) if [[ -z $cmd ]]; then cmd=$w; else npos=$((npos + 1)); fi ;;
    esac
  done
  if [[ -n $expect ]]; then
    _moshctl_takes "$cmd" "\${words[i - 1]}"
    _moshctl_value "$cur"
    return 0
  fi
  # After --: the command run on the host, not moshctl's; let bash complete it its own way.
  if ((rest)); then
    compopt -o default 2>/dev/null
    return 0
  fi
  case $cur in
    --*=*)
      _moshctl_takes "$cmd" "\${cur%%=*}" && _moshctl_value "\${cur#*=}"
      return 0
      ;;
    -*)
      _moshctl_options "$cmd"
      _moshctl_add "$cur" "\${opts[@]}"
      return 0
      ;;
  esac
  if [[ -z $cmd ]]; then
    _moshctl_add "$cur" ${words(m.commands.map((c) => c.name))}
    return 0
  fi
  _moshctl_positional "$cmd" "$npos"
  case $what in
    hosts)
      mapfile -t hosts < <(command moshctl "\${files[@]}" completion ${bashQuote(m.hostsArg)} 2>/dev/null)
      _moshctl_add "$cur" "\${hosts[@]}"
      ;;
    shells) _moshctl_add "$cur" ${words(m.shells)} ;;
    *)
      _moshctl_options "$cmd"
      _moshctl_add "$cur" "\${opts[@]}"
      ;;
  esac
  return 0
}

complete -F _moshctl moshctl
`;
}
