#!/usr/bin/env bash
# Install the peers bench/ssh.sh compares drrun with, from Debian's packages,
# only when something is missing: pdsh, parallel-ssh (pssh), clush
# (clustershell), ansible, curl (SFTP through libssh2), and the sshd the
# benchmark runs (openssh-server, openssh-client).  The test suite never
# needs these; `make deps` does not install them.  Needs root to install.
set -euo pipefail

PKGS=(pdsh pssh clustershell ansible curl openssh-server openssh-client python3 time procps)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bench deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# never let a package start its service on this machine
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq </dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
