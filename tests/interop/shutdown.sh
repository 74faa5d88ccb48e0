#!/usr/bin/env bash
# Graceful shutdown under load: SIGTERM or SIGINT (alternately) while several connections
# pipeline adds and searches, SHUTDOWN_ITERATIONS times (default 10). Each time the server
# must exit 0 within SHUTDOWN_WAIT seconds (default 10), every connection must show each
# request answered or a Notice of Disconnection followed by an orderly close (the client
# side, shutdown.py, says exactly what it checks), the store must verify, and after a
# restart every acknowledged add must be there and no unanswered add may be.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

ITERATIONS=${SHUTDOWN_ITERATIONS:-10}
WAIT=${SHUTDOWN_WAIT:-10}

bad_exit=0 slow=0 client_fail=0 verify_fail=0 lost=0 phantom=0 acked_total=0 unanswered_total=0 max_ms=0
not_ready=0 no_acks=0
for run in $(seq 1 "$ITERATIONS"); do
    if [ $((run % 2)) = 1 ]; then sig=TERM; else sig=INT; fi
    start_server
    rm -f "$WORK/ready" "$WORK/acked" "$WORK/unanswered"
    python3 "$HERE/shutdown.py" --ldapi "$SOCK" --port "$LDAP_PORT" --run "$run" --ready "$WORK/ready" \
        --acked "$WORK/acked" --unanswered "$WORK/unanswered" >"$WORK/client.out" 2>&1 &
    CLIENT=$!
    # The client says when every connection has had answers; until then there is no load
    # for the signal to interrupt. It gives up after 10 s and exits.
    for _ in $(seq 1 300); do
        [ -e "$WORK/ready" ] && break
        kill -0 "$CLIENT" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -e "$WORK/ready" ]; then
        not_ready=$((not_ready + 1))
        echo "     run $run: the load never got under way"
    fi
    # Somewhere in the first half second of the load.
    sleep "0.$(printf '%03d' $((RANDOM % 500)))"
    t0=$(date +%s%N)
    kill -"$sig" "$SERVER_PID"
    exited=""
    for _ in $(seq 1 $((WAIT * 100))); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then exited=1; break; fi
        sleep 0.01
    done
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -gt "$max_ms" ] && max_ms=$ms
    rc=0
    if [ -z "$exited" ]; then
        slow=$((slow + 1))
        echo "     run $run: still running ${WAIT}s after SIG$sig"
        kill -KILL "$SERVER_PID"
    fi
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    if [ -n "$exited" ] && [ "$rc" != 0 ]; then
        bad_exit=$((bad_exit + 1))
        echo "     run $run: exit status $rc after SIG$sig"
    fi
    crc=0
    wait "$CLIENT" || crc=$?
    if [ "$crc" != 0 ]; then
        client_fail=$((client_fail + 1))
        sed 's/^/     run '"$run"': /' "$WORK/client.out"
    fi
    verify_store "run $run" || verify_fail=$((verify_fail + 1))
    start_server
    present_people "sd-$run-"
    touch "$WORK/acked" "$WORK/unanswered"
    sort "$WORK/acked" >"$WORK/acked.sorted"
    sort "$WORK/unanswered" >"$WORK/unanswered.sorted"
    l=$(comm -13 "$WORK/present" "$WORK/acked.sorted" | wc -l)
    ph=$(comm -12 "$WORK/present" "$WORK/unanswered.sorted" | wc -l)
    lost=$((lost + l))
    phantom=$((phantom + ph))
    a=$(wc -l <"$WORK/acked")
    u=$(wc -l <"$WORK/unanswered")
    if [ "$a" = 0 ]; then
        no_acks=$((no_acks + 1))
        echo "     run $run: no add was acknowledged"
    fi
    acked_total=$((acked_total + a))
    unanswered_total=$((unanswered_total + u))
    echo "     run $run SIG$sig: exit $rc after ${ms} ms; $(head -1 "$WORK/client.out" | cut -d';' -f1-3)"
    [ "$l" = 0 ] || echo "     run $run: $l acknowledged adds missing"
    [ "$ph" = 0 ] || echo "     run $run: $ph adds performed but never answered"
    stop_server
done
echo "     $ITERATIONS shutdowns: slowest exit ${max_ms} ms; $acked_total adds acknowledged, $unanswered_total left unanswered"
# The work that gives the checks below their meaning.
if [ "$not_ready" = 0 ]; then pass "every connection had answers before each signal"; else fail "$not_ready runs: the load never got under way"; fi
if [ "$no_acks" = 0 ]; then pass "adds were acknowledged in every run"; else fail "$no_acks runs acknowledged no add"; fi
at_least "adds acknowledged" "$ITERATIONS" "$acked_total"
if grep -q "panicked" "$WORK/server.log"; then fail "the server panicked: $(grep -m1 panicked "$WORK/server.log")"; fi
if [ "$slow" = 0 ]; then pass "every shutdown finished within ${WAIT}s"; else fail "$slow shutdowns took longer than ${WAIT}s"; fi
if [ "$bad_exit" = 0 ]; then pass "the server exited 0 after each SIGTERM and SIGINT"; else fail "$bad_exit non-zero exits"; fi
if [ "$client_fail" = 0 ]; then pass "every request was answered or its connection got a Notice of Disconnection and an orderly close"; else fail "$client_fail runs with protocol problems"; fi
if [ "$verify_fail" = 0 ]; then pass "the store verifies after each shutdown"; else fail "$verify_fail verify failures"; fi
if [ "$lost" = 0 ]; then pass "every acknowledged add survived"; else fail "$lost acknowledged adds lost"; fi
if [ "$phantom" = 0 ]; then pass "no add was performed without being answered"; else fail "$phantom adds performed but not answered"; fi
finish
