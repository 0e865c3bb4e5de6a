#!/usr/bin/env bash
# Install the peers bench/ssh.sh compares drrun with, from Debian's packages,
# only when something is missing: pdsh, parallel-ssh (pssh), clush
# (clustershell), ansible, curl (SFTP through libssh2), and the sshd the
# benchmark runs (openssh-server, openssh-client); and bench/serve.sh's,
# webhook (adnanh/webhook).  The test suite never
# needs these; `make deps` does not install them.  Needs root to install.
set -euo pipefail
exec "$(dirname "$0")/../tests/deps.sh" pdsh pssh clustershell ansible curl openssh-server \
  openssh-client python3 time procps webhook
