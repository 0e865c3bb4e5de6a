#!/usr/bin/env bash
# Install what drrun needs to build, test and demo, from Debian's packages,
# only when something is missing.  Safe to run again; needs root to install.
#   tests/deps.sh            the packages below
#   tests/deps.sh PKG...     those packages instead (bench/deps.sh)
# Without arguments it also installs the npm packages of tests/fakes/package.json
# (s3rver and the SigV4 checker in front of it) into tests/fakes/node_modules,
# from the npm registry, when they are missing or package.json changed.
set -euo pipefail

PKGS=(
  gcc make pkg-config
  liblua5.4-dev lua5.4 libuv1-dev libcurl4-openssl-dev libssh2-1-dev libjansson-dev
  libssl-dev libpcre2-dev libexpat1-dev libmicrohttpd-dev libcmocka-dev
  python3 procps time coreutils util-linux iproute2 curl openssh-server openssh-client
  nginx libnginx-mod-http-echo openssl tmux python3-cryptography strace
  man-db groff-base
  python3-botocore awscli
  postgresql-15 etcd-server etcd-client knot knot-dnsutils bind9-dnsutils
  prometheus-alertmanager chromium
)
NPM=1
[ $# -gt 0 ] && PKGS=("$@") && NPM=

# the npm packages of the test servers: after the Debian ones (node, npm)
npm_deps() {
	local dir
	dir=$(cd "$(dirname "$0")" && pwd)/fakes
	[ -n "$NPM" ] || return 0
	if [ -f "$dir/node_modules/.stamp" ] && [ "$dir/node_modules/.stamp" -nt "$dir/package.json" ]; then
		return 0
	fi
	command -v npm >/dev/null || { echo "deps: npm is missing (Debian: nodejs npm)" >&2; return 1; }
	echo "deps: npm install in tests/fakes (s3rver, @smithy/signature-v4)"
	(cd "$dir" && npm install --no-audit --no-fund --loglevel=error </dev/null >/dev/null)
	touch "$dir/node_modules/.stamp"
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from another Debian repository than Debian's own
# (nodesource's nodejs carries npm): only install them when there is no npm
if [ -n "$NPM" ] && ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
	npm_deps
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# never let a package start its service on this machine
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
export DEBIAN_FRONTEND=noninteractive
# the tests make their own PostgreSQL clusters: the package's default one
# (port 5432) is not wanted
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  $SUDO mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
$SUDO apt-get update -qq </dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
npm_deps
