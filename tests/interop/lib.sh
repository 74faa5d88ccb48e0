# Shared helpers for the interop scripts: start a Tessera release binary on free loopback
# ports with its own data directory, wait for it, stop it, and assert on tool output.
#
# Every check helper looks at the command's exit status as well as its output, so a tool
# that failed (no server, a refused bind, a wrong base) never passes a check by printing
# nothing. A script that sources this file exits non-zero whenever a check failed, however
# it ends, and also when it ends without calling `finish` or without having run a check.
# shellcheck shell=bash

set -euo pipefail

TESSERA=${TESSERA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/tessera}
WORK=$(mktemp -d)
DATA="$WORK/data"
SERVER_PID=""
FAILURES=0
PASSES=0
FINISHED=""
# Commands `on_exit` adds, run at exit after the server stops and before $WORK goes.
EXIT_HOOKS=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

LDAPS_PORT=$(free_port)
LDAP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
SOCK="$DATA/ldapi.sock"
LDAPI="ldapi://$(printf '%s' "$SOCK" | sed 's|/|%2F|g')"
LDAPS="ldaps://localhost:$LDAPS_PORT"
LDAP="ldap://localhost:$LDAP_PORT"
API="https://localhost:$HTTPS_PORT"
export LDAPTLS_CACERT="$DATA/tls/ca.pem"
export LDAPTLS_REQCERT=demand

cat > "$WORK/tessera.toml" <<TOML
data_dir = "$DATA"
[listen]
ldaps = "127.0.0.1:$LDAPS_PORT"
ldap = "127.0.0.1:$LDAP_PORT"
https = "127.0.0.1:$HTTPS_PORT"
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
TOML

start_server() {
    "$TESSERA" serve --config "$WORK/tessera.toml" >"$WORK/stdout.log" 2>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if [ -S "$SOCK" ] && ldapwhoami -Y EXTERNAL -H "$LDAPI" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            fail "the server exited early:"; cat "$WORK/server.log"; exit 1
        fi
        sleep 0.1
    done
    fail "the server did not come up"; cat "$WORK/server.log"; exit 1
}

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    SERVER_PID=""
}

# SIGKILL the server, as a crash would.
kill_server() {
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# `tessera db verify` on the stopped server's store; on failure print why, labelled $1.
# Verified means exit 0 and a last line of "ok": verify prints "file integrity ok" before
# any problem it then finds.
verify_store() {
    local rc=0
    "$TESSERA" db verify --config "$WORK/tessera.toml" >"$WORK/verify.out" 2>&1 || rc=$?
    if [ "$rc" = 0 ] && [ "$(tail -n 1 "$WORK/verify.out")" = ok ] && ! grep -q '^problem:' "$WORK/verify.out"; then
        return 0
    fi
    echo "     $1: verify exited $rc: $(cat "$WORK/verify.out")"
    return 1
}

# expect_store_verifies NAME: `tessera db verify` accepts the (stopped) server's store.
expect_store_verifies() {
    if verify_store "$1"; then pass "$1"; else fail "$1"; fi
}

# The DNs of the people whose uid starts with $1, sorted, into $WORK/present.
present_people() {
    ldapsearch -Y EXTERNAL -Q -H "$LDAPI" -LLL -b "ou=people,dc=example,dc=com" "(uid=$1*)" 1.1 |
        sed -n 's/^dn: //p' | sort >"$WORK/present"
}

# on_exit COMMAND: run COMMAND (a string for eval) at exit, after the server has stopped.
# Scripts use this instead of their own EXIT trap, which would replace the one below.
on_exit() { EXIT_HOOKS+=("$1"); }

# The exit trap: stop the server, run the hooks, remove $WORK, and make the exit status
# non-zero if any check failed, the script stopped before `finish`, or nothing was checked.
cleanup() {
    local rc=$?
    stop_server
    local hook
    for hook in "${EXIT_HOOKS[@]}"; do eval "$hook" || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    if [ "$rc" = 0 ] && [ -z "$FINISHED" ]; then
        FAILURES=$((FAILURES + 1))
        echo "FAIL - $(basename "$0") ended without reaching finish"
    fi
    if [ "$FAILURES" != 0 ] && [ "$rc" = 0 ]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILURES=$((FAILURES + 1)); echo "FAIL - $*"; }

# run_captured COMMAND...: run COMMAND with its output (stdout and stderr) in
# $WORK/last.out and its exit status in LAST_RC; never stops the script.
run_captured() {
    LAST_RC=0
    # Written aside and moved into place, so a command may read the last output itself
    # (`expect_contains NAME NEEDLE cat "$WORK/last.out"`).
    "$@" >"$WORK/running.out" 2>&1 || LAST_RC=$?
    mv -f "$WORK/running.out" "$WORK/last.out"
}

# expect_contains NAME NEEDLE COMMAND...: COMMAND must exit 0 and its output contain NEEDLE.
expect_contains() {
    local name=$1 needle=$2; shift 2
    expect_output "$name" 0 "$needle" "$@"
}

# expect_output NAME CODE NEEDLE COMMAND...: COMMAND must exit with CODE and its output
# contain NEEDLE (ldapcompare exits 6 for TRUE and 5 for FALSE, and OpenLDAP's tools exit
# with the LDAP result code).
expect_output() {
    local name=$1 want=$2 needle=$3; shift 3
    run_captured "$@"
    if [ "$LAST_RC" != "$want" ]; then
        fail "$name: exit $LAST_RC, wanted $want: $(cat "$WORK/last.out")"
    elif ! grep -qF -- "$needle" "$WORK/last.out"; then
        fail "$name: no '$needle' in: $(cat "$WORK/last.out")"
    else
        pass "$name"
    fi
}

# expect_absent NAME WITNESS NEEDLES COMMAND...: COMMAND must exit 0, its output must
# contain WITNESS (so it did what it is there for: found the entry, read the log) and none
# of NEEDLES (fixed strings, one a line). A needle found is reported by line number only,
# since needles are often secrets.
expect_absent() {
    local name=$1 witness=$2 needles=$3; shift 3
    run_captured "$@"
    if [ "$LAST_RC" != 0 ]; then
        fail "$name: exit $LAST_RC: $(cat "$WORK/last.out")"
    elif ! grep -qF -- "$witness" "$WORK/last.out"; then
        fail "$name: no '$witness' in the output, so it shows nothing: $(cat "$WORK/last.out")"
    elif grep -qF -- "$needles" "$WORK/last.out"; then
        fail "$name: a forbidden string on output line(s) $(grep -nF -- "$needles" "$WORK/last.out" | cut -d: -f1 | tr '\n' ' ')"
    else
        pass "$name"
    fi
}

# log_text FILE...: the server's log without the terminal colour codes it writes even to a
# file, so a field reads as it does on a terminal: event="bind".
log_text() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }

# unfolded COMMAND...: COMMAND's output with LDIF's folded lines joined, so a search for
# a value cannot miss it where a line was cut; returns COMMAND's exit status.
unfolded() {
    local rc=0
    "$@" >"$WORK/folded.out" 2>&1 || rc=$?
    sed -e ':a' -e 'N' -e '$!ba' -e 's/\n //g' "$WORK/folded.out"
    return "$rc"
}

# expect_rc NAME CODE COMMAND...: COMMAND must exit with CODE (OpenLDAP tools exit with the LDAP result code).
expect_rc() {
    local name=$1 want=$2; shift 2
    run_captured "$@"
    if [ "$LAST_RC" = "$want" ]; then pass "$name"; else fail "$name: exit $LAST_RC, wanted $want: $(cat "$WORK/last.out")"; fi
}

# at_least NAME MINIMUM COUNT: a durability script's proof that the work it checks
# happened (acknowledged writes, kills during recovery, answered requests): COUNT must be
# at least MINIMUM.
at_least() {
    if [ "$3" -ge "$2" ]; then pass "$1: $3 (at least $2)"; else fail "$1: $3, fewer than $2"; fi
}

# grant ROLE DN: make DN a holder of the role cn=ROLE,ou=roles (as the local administrator).
grant() {
    printf 'dn: cn=%s,ou=roles,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: %s\n' "$1" "$2" |
        ldapmodify -Y EXTERNAL -Q -H "$LDAPI" >/dev/null
}

# relay FILE: count the "ok   - " and "FAIL - " lines another process wrote to FILE as this
# script's own, and show the rest indented.
relay() {
    local line
    while IFS= read -r line; do
        case "$line" in
            "ok   - "*) pass "${line#ok   - }" ;;
            "FAIL - "*) fail "${line#FAIL - }" ;;
            *) echo "     $line" ;;
        esac
    done <"$1"
}

# in_namespace FUNCTION ARGS...: run FUNCTION (defined in the calling script) as PID 1 of a
# new PID and mount namespace, with a private /run. Bind mounts made inside over /etc
# files exist only there, and when FUNCTION returns or dies the kernel kills every daemon
# it started and drops every mount: the host is left as it was, even on failure. The
# function's ok/FAIL lines are counted here; its exit status is returned.
in_namespace() {
    declare -f >"$WORK/ns-functions.bash"
    export WORK DATA LDAPS LDAP LDAPI LDAPS_PORT LDAP_PORT TESSERA
    local rc=0
    unshare --mount --pid --fork --kill-child --mount-proc --propagation private \
        bash -c 'set -euo pipefail; source "$0"; mount -t tmpfs -o mode=755 tmpfs /run; PASSES=0; FAILURES=0; "$@"' \
        "$WORK/ns-functions.bash" "$@" >"$WORK/ns.out" 2>&1 || rc=$?
    relay "$WORK/ns.out"
    return $rc
}

finish() {
    FINISHED=1
    if [ "$PASSES" = 0 ] && [ "$FAILURES" = 0 ]; then fail "no check ran"; fi
    echo "$PASSES passed, $FAILURES failed"
    [ "$FAILURES" = 0 ]
}
