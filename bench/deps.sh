#!/usr/bin/env bash
# Install the peers the benchmarks compare drrun with, from Debian's packages,
# only when something is missing: for bench/ssh.sh pdsh, parallel-ssh (pssh),
# clush (clustershell), ansible, curl (SFTP through libssh2), and the sshd the
# benchmark runs (openssh-server, openssh-client); for bench/serve.sh webhook
# (adnanh/webhook); for bench/aws.sh rclone (the AWS CLI and botocore come
# with tests/deps.sh).  The test suite never needs these; `make deps` does not
# install them.  Needs root to install.
set -euo pipefail
exec "$(dirname "$0")/../tests/deps.sh" pdsh pssh clustershell ansible curl openssh-server \
  openssh-client python3 time procps webhook rclone
