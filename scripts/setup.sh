#!/usr/bin/env bash
# Sets up a fresh Debian machine for moshctl: the Debian packages the lab and
# the end-to-end tests drive (mosh, sshd, tmux, iproute2, nftables, socat, nc,
# python3), the npm packages, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in mosh-server:mosh mosh-client:mosh /usr/sbin/sshd:openssh-server ssh:openssh-client \
  ssh-keygen:openssh-client tmux:tmux ip:iproute2 nft:nftables socat:socat nc:netcat-openbsd python3:python3; do
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
# per namespace and never needs that one.

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
echo "setup: ready"
