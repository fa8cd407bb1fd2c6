#!/usr/bin/env bash
# The cluster tests start a single-node Slurm (Debian's slurmctld, slurmd, munge) and a PostgreSQL
# server (Debian's postgresql) in a temporary folder: install them when they are missing and this
# user may install packages. Elsewhere those tests are skipped (or fail, when
# PRUNEBENCH_REQUIRE_CLUSTER=1, as in CI). Nothing is started or enabled as a system service here.
set -euo pipefail
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's ${missing[*]} for the Slurm and PostgreSQL tests ..." >&2
  # policy-rc.d 101: the packages' own services are not started (the tests start their own)
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
else
  echo "${missing[*]} not found: the Slurm and PostgreSQL tests will be skipped" >&2
fi
