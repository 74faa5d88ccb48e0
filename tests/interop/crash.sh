#!/usr/bin/env bash
# Durability: a write load (adds, modifies, token generation) against the release binary,
# SIGKILLed at random points and restarted, CRASH_ITERATIONS times (default 50). After each
# kill the store must verify, and after each restart every write the client saw
# acknowledged must be there.
source "$(dirname "$0")/lib.sh"

ITERATIONS=${CRASH_ITERATIONS:-50}
SUFFIX=dc=example,dc=com
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")
ACKED="$WORK/acked"
: >"$ACKED"

start_server
# Its manager must exist: references name real entries.
"$TESSERA" person create crashowner "Crash owner" --config "$WORK/tessera.toml" >/dev/null
"$TESSERA" service-account create crashsvc "Crash test" "uid=crashowner,ou=people,$SUFFIX" \
    --config "$WORK/tessera.toml" >/dev/null
stop_server

# One writer: each operation's acknowledgement is recorded after the tool exits 0. It
# stops at the first failure, which should be the kill; what failed goes to
# $WORK/writer-ROUND.stop, so a writer that stopped while the server was up (an ACL,
# schema or socket fault) is seen, not taken for a crash.
writer() {
    local round=$1 n=0 stop="$WORK/writer-$1.stop"
    while :; do
        n=$((n + 1))
        local dn="uid=crash-$round-$n,ou=people,$SUFFIX"
        printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: crash-%s-%s\ncn: c\nsn: c\n' "$dn" "$round" "$n" |
            ldapadd "${ADMIN[@]}" >/dev/null 2>"$stop.err" || { echo "add $n: $(cat "$stop.err")" >"$stop"; return 0; }
        echo "add $dn" >>"$ACKED"
        printf 'dn: uid=crashsvc,ou=services,%s\nchangetype: modify\nreplace: description\ndescription: %s\n' \
            "$SUFFIX" "$round-$n" | ldapmodify "${ADMIN[@]}" >/dev/null 2>"$stop.err" ||
            { echo "modify $n: $(cat "$stop.err")" >"$stop"; return 0; }
        echo "mod $round $n" >>"$ACKED"
        if [ $((n % 3)) = 0 ]; then
            "$TESSERA" service-account api-token generate crashsvc "t$round-$n" --config "$WORK/tessera.toml" \
                >"$WORK/token.out" 2>"$WORK/token.err" || { echo "token $n: $(cat "$WORK/token.err")" >"$stop"; return 0; }
            id=$(sed -n 's/^Token id \([A-Za-z0-9]*\) .*/\1/p' "$WORK/token.err")
            echo "tok $id" >>"$ACKED"
            # Revoke it again straight away, now and then: an acknowledged revocation must
            # survive the crash too.
            if [ $((n % 2)) = 0 ]; then
                echo "revoking $id" >>"$ACKED"
                ldapdelete "${ADMIN[@]}" "tokenId=$id,uid=crashsvc,ou=services,$SUFFIX" >/dev/null 2>"$stop.err" ||
                    { echo "revoke $n: $(cat "$stop.err")" >"$stop"; return 0; }
                echo "rev $id" >>"$ACKED"
            fi
        fi
    done
}

# wait_acked PATTERN: wait up to 20 s for an acknowledged line matching PATTERN, while the
# writer runs; false if none came.
wait_acked() {
    local _
    for _ in $(seq 1 400); do
        grep -q "$1" "$ACKED" && return 0
        [ -e "$WORK/writer-$round.stop" ] && return 1
        sleep 0.05
    done
    return 1
}

# The acknowledged lines matching $1; none (a kill before the first one) is no error.
acked() { grep "$1" "$ACKED" || true; }

verify_failures=0
missing=0
idle=0
stopped=0
START=$(date +%s%N)
for round in $(seq 1 "$ITERATIONS"); do
    start_server
    writer "$round" &
    WRITER=$!
    # The load is under way before the clock starts: this round's first add and modify are
    # acknowledged, and in the first round a token's revocation too, so every kind of
    # write is shown to survive at least once.
    if [ "$round" = 1 ]; then want="^rev "; else want="^mod $round "; fi
    if ! wait_acked "$want"; then
        idle=$((idle + 1))
        echo "     round $round: no '$want' write acknowledged"
    fi
    # Then 50 ms to 1 s into the load.
    sleep "0.$(printf '%02d' $((RANDOM % 95 + 5)))"
    if [ -e "$WORK/writer-$round.stop" ]; then
        stopped=$((stopped + 1))
        echo "     round $round: the writer stopped before the kill: $(cat "$WORK/writer-$round.stop")"
    fi
    kill_server
    wait "$WRITER" || true
    verify_store "round $round" || verify_failures=$((verify_failures + 1))
    start_server
    present_people "crash-$round-"
    acked "^add uid=crash-$round-" | cut -d' ' -f2 | sort >"$WORK/expected"
    lost=$(comm -13 "$WORK/present" "$WORK/expected" | wc -l)
    # The description holds the last acknowledged modify of this round, or a later one.
    last=$(acked "^mod $round " | tail -1 | cut -d' ' -f3)
    now=$(ldapsearch "${ADMIN[@]}" -LLL -b "uid=crashsvc,ou=services,$SUFFIX" -s base description |
        sed -n "s/^description: $round-//p")
    if [ -n "$last" ] && { [ -z "$now" ] || [ "$now" -lt "$last" ]; }; then lost=$((lost + 1)); fi
    acked "^rev " | cut -d' ' -f2 | sort >"$WORK/revoked"
    for id in $(acked "^tok " | cut -d' ' -f2); do
        if grep -qx "revoking $id" "$ACKED" && ! grep -qx "$id" "$WORK/revoked"; then
            continue # a revocation under way at the kill may have landed or not
        elif grep -qx "$id" "$WORK/revoked"; then
            # Revoked and acknowledged: gone for good.
            if ldapsearch "${ADMIN[@]}" -LLL -b "tokenId=$id,uid=crashsvc,ou=services,$SUFFIX" -s base 1.1 \
                >/dev/null 2>&1; then lost=$((lost + 1)); fi
        else
            ldapsearch "${ADMIN[@]}" -LLL -b "tokenId=$id,uid=crashsvc,ou=services,$SUFFIX" -s base 1.1 \
                >/dev/null 2>&1 || lost=$((lost + 1))
        fi
    done
    missing=$((missing + lost))
    [ "$lost" = 0 ] || echo "     round $round: $lost acknowledged writes missing"
    stop_server
done
SECS=$(( ($(date +%s%N) - START) / 1000000000 ))
echo "     $ITERATIONS kills in ${SECS}s; acknowledged: $(grep -c '^add ' "$ACKED") adds, $(grep -c '^mod ' "$ACKED") modifies, $(grep -c '^tok ' "$ACKED") tokens, $(grep -c '^rev ' "$ACKED") revocations"
# The work that gives the checks below their meaning.
if [ "$idle" = 0 ]; then pass "writes were acknowledged in every round before its kill"; else fail "$idle rounds had no acknowledged write before the kill"; fi
if [ "$stopped" = 0 ]; then pass "the writer was still writing at each kill"; else fail "$stopped rounds: the writer stopped before the kill"; fi
at_least "acknowledged adds" "$ITERATIONS" "$(grep -c '^add ' "$ACKED" || true)"
at_least "acknowledged modifies" "$ITERATIONS" "$(grep -c '^mod ' "$ACKED" || true)"
at_least "acknowledged tokens" 1 "$(grep -c '^tok ' "$ACKED" || true)"
at_least "acknowledged revocations" 1 "$(grep -c '^rev ' "$ACKED" || true)"
if [ "$verify_failures" = 0 ]; then pass "the store verifies after each of $ITERATIONS SIGKILLs"; else fail "$verify_failures verify failures"; fi
if [ "$missing" = 0 ]; then pass "every acknowledged write survived"; else fail "$missing acknowledged writes lost"; fi
expect_store_verifies "tessera db verify at the end"
finish
