#!/usr/bin/env bash
# A Jepsen-style fault run against a three-node cluster, bounded in time
# (CLUSTER_FAULT_SECONDS of load, default 60; about 90 s in all): a write load (adds,
# modifies, token mints and revocations) spread over the nodes while a nemesis SIGKILLs the
# leader, SIGSTOPs a node, restarts nodes and partitions one node from the others. Runs as
# root inside a network namespace it makes (and removes), where the nodes listen on
# 127.0.0.11-13: a partition is a pair of blackhole routing rules there, nothing outside
# it is touched. The checks and the counts come from cluster_faults.py.
source "$(dirname "$0")/lib.sh"

NS="tessera-faults-$$"
ip netns add "$NS"
on_exit "ip netns del $NS"
mkdir -p "$WORK/faults"
rc=0
ip netns exec "$NS" python3 "$(dirname "$0")/cluster_faults.py" --tessera "$TESSERA" \
    --work "$WORK/faults" --seconds "${CLUSTER_FAULT_SECONDS:-60}" >"$WORK/faults.out" 2>&1 || rc=$?
relay "$WORK/faults.out"
if [ "$rc" != 0 ]; then
    fail "the fault run exited $rc"
    for log in "$WORK"/faults/n*/server.log; do
        echo "     --- $log (last lines)"
        log_text "$log" | tail -n 15 | sed 's/^/     /'
    done
fi
finish
