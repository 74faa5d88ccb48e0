#!/usr/bin/env bash
# Run every interop script against the release binary; any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")"
status=0
for script in ./*.sh; do
    case "$script" in ./lib.sh|./seed.sh|./run.sh) continue ;; esac
    echo "== $script"
    bash "$script" || status=1
done
exit $status
