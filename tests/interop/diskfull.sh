#!/usr/bin/env bash
# Disk full during a commit: the data directory on a small tmpfs, writes until the file
# system is full. A failed write must get an error result (never success), reads go on,
# and writes work again once space is freed. Needs root for the mount, as CI has.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    fail "diskfull.sh needs root to mount a tmpfs"
    finish
    exit 1
fi
mkdir -p "$DATA"
# Owner-only, as the server requires of its data directory.
mount -t tmpfs -o size=6m,mode=0700 tmpfs "$DATA"
on_exit 'umount "$DATA" 2>/dev/null'
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")
SUFFIX=dc=example,dc=com
start_server
# Room to free later.
dd if=/dev/zero of="$DATA/ballast" bs=1k count=1024 status=none

big=$(head -c 3000 /dev/zero | tr '\0' 'x')
full_rc=""
for n in $(seq 1 4000); do
    rc=0
    printf 'dn: uid=fill%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: fill%s\ncn: c\nsn: c\ndescription: %s\n' \
        "$n" "$SUFFIX" "$n" "$big" | ldapadd "${ADMIN[@]}" >"$WORK/add.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        full_rc=$rc
        break
    fi
done
echo "     the file system filled after $((n - 1)) adds ($(df -k --output=avail "$DATA" | tail -1) KiB left); the next add got $full_rc"
if [ -n "$full_rc" ] && [ "$full_rc" != 0 ]; then
    pass "a write on a full disk gets an error result ($full_rc: $(grep -o 'additional info: .*' "$WORK/add.out" | head -1))"
else
    fail "the disk never filled"
fi
# The add that failed is number n: it must have left no entry (32, no such object), while
# the one before it, acknowledged, is there.
expect_rc "the failed add (uid=fill$n) left nothing behind" 32 \
    ldapsearch "${ADMIN[@]}" -LLL -b "uid=fill$n,ou=people,$SUFFIX" -s base 1.1
expect_contains "the last acknowledged add (uid=fill$((n - 1))) is there" "dn: uid=fill$((n - 1)),ou=people,$SUFFIX" \
    ldapsearch "${ADMIN[@]}" -LLL -b "uid=fill$((n - 1)),ou=people,$SUFFIX" -s base 1.1
expect_contains "reads go on while the disk is full" "dn: uid=fill1,ou=people,$SUFFIX" \
    ldapsearch "${ADMIN[@]}" -LLL -b "uid=fill1,ou=people,$SUFFIX" -s base 1.1
rm -f "$DATA/ballast"
printf 'dn: uid=after,ou=people,%s\nobjectClass: inetOrgPerson\nuid: after\ncn: c\nsn: c\n' "$SUFFIX" >"$WORK/after.ldif"
ok=0
for _ in $(seq 1 20); do
    if ldapadd "${ADMIN[@]}" -f "$WORK/after.ldif" >"$WORK/after.out" 2>&1; then ok=1; break; fi
    sleep 0.2
done
if [ "$ok" = 1 ]; then pass "writes work again once space is freed"; else fail "writes after freeing space: $(cat "$WORK/after.out")"; fi
expect_contains "the server opened the database again" "opened again" cat "$WORK/server.log"
expect_rc "in the database opened again, the failed add is still absent" 32 \
    ldapsearch "${ADMIN[@]}" -LLL -b "uid=fill$n,ou=people,$SUFFIX" -s base 1.1
stop_server
expect_store_verifies "the store verifies afterwards"
finish
