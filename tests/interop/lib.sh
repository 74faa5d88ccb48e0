# Shared helpers for the interop scripts: start a Tessera release binary on free loopback
# ports with its own data directory, wait for it, stop it, and assert on tool output.
# shellcheck shell=bash

set -euo pipefail

TESSERA=${TESSERA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/tessera}
WORK=$(mktemp -d)
DATA="$WORK/data"
SERVER_PID=""
FAILURES=0
PASSES=0

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

LDAPS_PORT=$(free_port)
LDAP_PORT=$(free_port)
SOCK="$DATA/ldapi.sock"
LDAPI="ldapi://$(printf '%s' "$SOCK" | sed 's|/|%2F|g')"
LDAPS="ldaps://localhost:$LDAPS_PORT"
LDAP="ldap://localhost:$LDAP_PORT"
export LDAPTLS_CACERT="$DATA/tls/ca.pem"
export LDAPTLS_REQCERT=demand

cat > "$WORK/tessera.toml" <<TOML
data_dir = "$DATA"
[listen]
ldaps = "127.0.0.1:$LDAPS_PORT"
ldap = "127.0.0.1:$LDAP_PORT"
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
            echo "server exited early:"; cat "$WORK/server.log"; exit 1
        fi
        sleep 0.1
    done
    echo "server did not come up"; cat "$WORK/server.log"; exit 1
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
verify_store() {
    if "$TESSERA" db verify --config "$WORK/tessera.toml" >"$WORK/verify.out" 2>&1; then
        return 0
    fi
    echo "     $1: verify failed: $(cat "$WORK/verify.out")"
    return 1
}

# The DNs of the people whose uid starts with $1, sorted, into $WORK/present.
present_people() {
    ldapsearch -Y EXTERNAL -Q -H "$LDAPI" -LLL -b "ou=people,dc=example,dc=com" "(uid=$1*)" 1.1 |
        sed -n 's/^dn: //p' | sort >"$WORK/present"
}

cleanup() {
    stop_server
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILURES=$((FAILURES + 1)); echo "FAIL - $*"; }

# expect_contains NAME NEEDLE COMMAND...: run COMMAND, its output must contain NEEDLE.
expect_contains() {
    local name=$1 needle=$2; shift 2
    local out
    out=$("$@" 2>&1) || true
    if grep -qF -- "$needle" <<<"$out"; then pass "$name"; else fail "$name: no '$needle' in: $out"; fi
}

# expect_rc NAME CODE COMMAND...: COMMAND must exit with CODE (OpenLDAP tools exit with the LDAP result code).
expect_rc() {
    local name=$1 want=$2; shift 2
    local rc=0
    "$@" >"$WORK/last.out" 2>&1 || rc=$?
    if [ "$rc" = "$want" ]; then pass "$name"; else fail "$name: exit $rc, wanted $want: $(cat "$WORK/last.out")"; fi
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
    echo "$PASSES passed, $FAILURES failed"
    [ "$FAILURES" = 0 ]
}
