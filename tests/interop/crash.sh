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
"$TESSERA" service-account create crashsvc "Crash test" "uid=nobody,ou=people,$SUFFIX" \
    --config "$WORK/tessera.toml" >/dev/null
stop_server

# One writer: each operation's acknowledgement is recorded after the tool exits 0. It
# stops at the first failure (the server is gone).
writer() {
    local round=$1 n=0
    while :; do
        n=$((n + 1))
        local dn="uid=crash-$round-$n,ou=people,$SUFFIX"
        printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: crash-%s-%s\ncn: c\nsn: c\n' "$dn" "$round" "$n" |
            ldapadd "${ADMIN[@]}" >/dev/null 2>&1 || return 0
        echo "add $dn" >>"$ACKED"
        printf 'dn: uid=crashsvc,ou=services,%s\nchangetype: modify\nreplace: description\ndescription: %s\n' \
            "$SUFFIX" "$round-$n" | ldapmodify "${ADMIN[@]}" >/dev/null 2>&1 || return 0
        echo "mod $round $n" >>"$ACKED"
        if [ $((n % 3)) = 0 ]; then
            "$TESSERA" service-account api-token generate crashsvc "t$round-$n" --config "$WORK/tessera.toml" \
                >"$WORK/token.out" 2>"$WORK/token.err" || return 0
            id=$(sed -n 's/^Token id \([A-Za-z0-9]*\) .*/\1/p' "$WORK/token.err")
            echo "tok $id" >>"$ACKED"
            # Revoke it again straight away, now and then: an acknowledged revocation must
            # survive the crash too.
            if [ $((n % 2)) = 0 ]; then
                echo "revoking $id" >>"$ACKED"
                ldapdelete "${ADMIN[@]}" "tokenId=$id,uid=crashsvc,ou=services,$SUFFIX" >/dev/null 2>&1 || return 0
                echo "rev $id" >>"$ACKED"
            fi
        fi
    done
}

# The acknowledged lines matching $1; none (a kill before the first one) is no error.
acked() { grep "$1" "$ACKED" || true; }

verify_failures=0
missing=0
START=$(date +%s%N)
for round in $(seq 1 "$ITERATIONS"); do
    start_server
    writer "$round" &
    WRITER=$!
    # 50 ms to 1 s into the load.
    sleep "0.$(printf '%02d' $((RANDOM % 95 + 5)))"
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
if [ "$verify_failures" = 0 ]; then pass "the store verifies after each of $ITERATIONS SIGKILLs"; else fail "$verify_failures verify failures"; fi
if [ "$missing" = 0 ]; then pass "every acknowledged write survived"; else fail "$missing acknowledged writes lost"; fi
expect_contains "tessera db verify at the end" "ok" "$TESSERA" db verify --config "$WORK/tessera.toml"
finish
