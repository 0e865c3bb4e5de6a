#!/usr/bin/env bash
# Install what drrun needs to build, test and demo, from Debian's packages,
# only when something is missing.  Safe to run again; needs root to install.
#   tests/deps.sh            the packages below
#   tests/deps.sh PKG...     those packages instead (bench/deps.sh)
set -euo pipefail

PKGS=(
  gcc make pkg-config
  liblua5.4-dev lua5.4 libuv1-dev libcurl4-openssl-dev libssh2-1-dev libjansson-dev
  libssl-dev libpcre2-dev libexpat1-dev libmicrohttpd-dev libcmocka-dev
  python3 procps time coreutils util-linux iproute2 curl openssh-server openssh-client
  nginx libnginx-mod-http-echo openssl tmux python3-cryptography strace
  man-db groff-base
  python3-botocore awscli
)
[ $# -gt 0 ] && PKGS=("$@")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
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
