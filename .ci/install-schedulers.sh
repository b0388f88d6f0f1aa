#!/usr/bin/env bash
# Install the real batch schedulers and the browser the deployment tests drive
# (Debian: slurm-wlm + munge, Son of Grid Engine, chromium), only when missing.
# Idempotent and quiet: when everything is present it only runs `dpkg -s` and exits.
# apt never starts daemons here (policy-rc.d, no systemd); the tests start them
# themselves and stop them by PID (see tests/deploy/ and ../shared/notes/deploy.md).
set -euo pipefail
want=(slurm-wlm slurmctld slurmd slurm-client munge gridengine-master gridengine-exec gridengine-client chromium)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-schedulers: need root to install ${missing[*]}; the scheduler tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# gridengine asks for its master host; without the preseed act_qmaster stays empty.
echo "gridengine-common shared/gridenginemaster string $(hostname -s)" | debconf-set-selections
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-schedulers: installed ${missing[*]}" >&2
