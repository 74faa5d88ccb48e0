#!/usr/bin/env bash
# D3, crash during recovery: SIGKILL under a write load, then SIGKILL again during the
# next start-up (the recovery after the first crash), at 0, 5, 20 and 50 ms after spawn,
# each delay twice, then a normal start. DOUBLECRASH_ITERATIONS rounds (default 10). The
# store is seeded with DOUBLECRASH_SEED entries (default 20000) so that opening it (redb's
# repair, then the start-up integrity check) takes long enough to be hit. After each
# round every acknowledged add must be there and the store must verify.
source "$(dirname "$0")/lib.sh"

ITERATIONS=${DOUBLECRASH_ITERATIONS:-10}
SEED=${DOUBLECRASH_SEED:-20000}
DELAYS=(0 5 20 50 0 5 20 50)
SUFFIX=dc=example,dc=com
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")
ACKED="$WORK/acked"
: >"$ACKED"

python3 - "$SEED" >"$WORK/seed.ldif" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"dn: uid=seed{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: seed{i}\ncn: Seed {i}\nsn: {i}\n")
PY
"$TESSERA" db import --quiet --config "$WORK/tessera.toml" "$WORK/seed.ldif" >/dev/null 2>&1

# The writer stops at its first failure, which should be the kill; what failed goes to
# $WORK/writer-ROUND.stop, so one that stopped while the server was up is seen.
writer() {
    local round=$1 n=0 stop="$WORK/writer-$1.stop"
    while :; do
        n=$((n + 1))
        local dn="uid=dc-$round-$n,ou=people,$SUFFIX"
        printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: dc-%s-%s\ncn: c\nsn: c\n' "$dn" "$round" "$n" |
            ldapadd "${ADMIN[@]}" >/dev/null 2>"$stop.err" || { echo "add $n: $(cat "$stop.err")" >"$stop"; return 0; }
        echo "$dn" >>"$ACKED"
    done
}

# The time a normal start takes here, to the LDAPI socket answering.
t0=$(date +%s%N)
start_server
START_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
stop_server

verify_failures=0 missing=0 early=0 late=0 refused=0 recoveries=0 during=0 idle=0 stopped=0 rounds_without=0
for round in $(seq 1 "$ITERATIONS"); do
    start_server
    writer "$round" &
    WRITER=$!
    # The load is under way before the clock starts: this round's first add is acknowledged.
    acked_one=""
    for _ in $(seq 1 400); do
        if grep -q "^uid=dc-$round-" "$ACKED"; then acked_one=1; break; fi
        [ -e "$WORK/writer-$round.stop" ] && break
        sleep 0.05
    done
    if [ -z "$acked_one" ]; then
        idle=$((idle + 1))
        echo "     round $round: no add acknowledged"
    fi
    sleep "0.$(printf '%02d' $((RANDOM % 50 + 20)))"
    if [ -e "$WORK/writer-$round.stop" ]; then
        stopped=$((stopped + 1))
        echo "     round $round: the writer stopped before the kill: $(cat "$WORK/writer-$round.stop")"
    fi
    kill_server
    wait "$WRITER" || true
    round_during=0
    for delay in "${DELAYS[@]}"; do
        rm -f "$SOCK"
        "$TESSERA" serve --config "$WORK/tessera.toml" >/dev/null 2>>"$WORK/recovery.log" &
        pid=$!
        [ "$delay" = 0 ] || sleep "0.$(printf '%03d' "$delay")"
        # Before the socket exists the server is still opening, checking or repairing.
        if [ -S "$SOCK" ]; then late=$((late + 1)); else early=$((early + 1)); fi
        # A kill during recovery: the server holds the database file open and has not yet
        # made its socket (it listens only once the store is open and checked), before the
        # kill and after it (a SIGKILLed server leaves its socket file behind).
        opened=""
        if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "tessera.redb"; then opened=1; fi
        kill -KILL "$pid" 2>/dev/null || true
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        if [ -n "$opened" ] && [ "$rc" = 137 ] && [ ! -S "$SOCK" ]; then
            during=$((during + 1))
            round_during=$((round_during + 1))
        fi
        # 137: killed. Anything else: it had stopped by itself, refusing the file.
        if [ "$rc" != 137 ]; then
            refused=$((refused + 1))
            echo "     round $round, ${delay} ms: the server exited $rc by itself"
        fi
    done
    recoveries=$((recoveries + ${#DELAYS[@]}))
    if [ "$round_during" = 0 ]; then
        rounds_without=$((rounds_without + 1))
        echo "     round $round: no kill landed during recovery"
    fi
    verify_store "round $round" || verify_failures=$((verify_failures + 1))
    start_server
    present_people "dc-$round-"
    grep "^uid=dc-$round-" "$ACKED" | sort >"$WORK/expected" || true
    lost=$(comm -13 "$WORK/present" "$WORK/expected" | wc -l)
    missing=$((missing + lost))
    [ "$lost" = 0 ] || echo "     round $round: $lost acknowledged adds missing"
    stop_server
done
echo "     $SEED seeded entries, a normal start takes ${START_MS} ms; $ITERATIONS crashes under load, each followed by ${#DELAYS[@]} kills during the restart ($recoveries in all: $early before the server listened, $late after; $during with the database open and no socket yet); $(wc -l <"$ACKED") adds acknowledged"
# The work that gives the checks below their meaning.
if [ "$idle" = 0 ]; then pass "adds were acknowledged in every round before its kill"; else fail "$idle rounds had no acknowledged add before the kill"; fi
if [ "$stopped" = 0 ]; then pass "the writer was still writing at each kill"; else fail "$stopped rounds: the writer stopped before the kill"; fi
if [ "$rounds_without" = 0 ]; then
    pass "every round had a kill during recovery (the database open, not yet listening)"
else
    fail "$rounds_without rounds had no kill during recovery"
fi
at_least "kills during recovery" "$ITERATIONS" "$during"
if grep -q "panicked" "$WORK/recovery.log" "$WORK/server.log"; then fail "a panic during recovery: $(grep -h -m1 panicked "$WORK/recovery.log" "$WORK/server.log")"; fi
if [ "$refused" = 0 ]; then pass "no restart refused the file"; else fail "$refused restarts refused the file"; fi
if [ "$verify_failures" = 0 ]; then pass "the store verifies after each double crash"; else fail "$verify_failures verify failures"; fi
if [ "$missing" = 0 ]; then pass "every acknowledged add survived the crashes during recovery"; else fail "$missing acknowledged adds lost"; fi
expect_store_verifies "tessera db verify at the end"
finish
