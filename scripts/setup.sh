#!/usr/bin/env bash
# Sets up a fresh Debian machine for moshctl: the Debian packages the lab and
# the end-to-end tests drive (mosh, sshd, tmux and screen, iproute2, nftables,
# socat, nc, python3, zsh and fish as login shells, busybox and Dropbear for
# the lab's busybox and Dropbear hosts, and curl and ssh-agent for the
# forwarding tests), the local users the
# tests log in as, the npm packages, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in mosh-server:mosh mosh-client:mosh /usr/sbin/sshd:openssh-server ssh:openssh-client \
  ssh-keygen:openssh-client tmux:tmux screen:screen ip:iproute2 nft:nftables socat:socat \
  nc:netcat-openbsd python3:python3 zsh:zsh fish:fish setpriv:util-linux unshare:util-linux \
  busybox:busybox /usr/sbin/dropbear:dropbear-bin dropbearconvert:dropbear-bin \
  curl:curl ssh-agent:openssh-client ssh-add:openssh-client; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's openssh-server package enables a system sshd; the lab runs its own
# per namespace and never needs that one. dropbear-bin (not dropbear) starts no
# system server.

# Local users for the e2e tests (src/lab/users.ts has the same list): remote
# login users with different login shells, since a remote command is run by
# the user's shell, and mctl-client, an ordinary user that runs moshctl.
users=(mctl-bash:/bin/bash mctl-dash:/bin/sh mctl-zsh:/usr/bin/zsh mctl-fish:/usr/bin/fish mctl-client:/bin/bash)
if [ "$(id -u)" -eq 0 ]; then
  for pair in "${users[@]}"; do
    user=${pair%%:*} shell=${pair#*:}
    if ! id -u "$user" >/dev/null 2>&1; then
      echo "setup: adding user $user ($shell)"
      # '*' instead of useradd's locked '!': sshd without PAM refuses key
      # logins to locked accounts, and '*' still matches no password.
      useradd --create-home --home-dir "/home/$user" --shell "$shell" --user-group --password '*' "$user"
    fi
    [ "$(getent passwd "$user" | cut -d: -f7)" = "$shell" ] || usermod --shell "$shell" "$user"
    case "$(getent shadow "$user" | cut -d: -f2)" in '!'*) usermod --password '*' "$user" ;; esac
  done
  # A zsh user without any startup file gets zsh-newuser-install's menu instead
  # of a prompt; real zsh users have a ~/.zshrc.
  home=$(getent passwd mctl-zsh | cut -d: -f6)
  [ -e "$home/.zshrc" ] || install -o mctl-zsh -g mctl-zsh -m 0644 /dev/null "$home/.zshrc"
else
  for pair in "${users[@]}"; do
    id -u "${pair%%:*}" >/dev/null 2>&1 ||
      echo "setup: user ${pair%%:*} is missing (run this as root to add it); tests that log in as it will be skipped" >&2
  done
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
echo "setup: ready"
