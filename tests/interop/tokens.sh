#!/usr/bin/env bash
# The walk-through of kanidm's service-account documentation, with Tessera's CLI and
# OpenLDAP's tools: demo_service managed by demo_group, a read-only token minted by a member
# of demo_group over LDAPS, binds with dn=token and with the account's DN, a search, a
# refused write, a read-write token that writes, rotation, and destroy ending the token.
source "$(dirname "$0")/lib.sh"

start_server
SUFFIX=dc=example,dc=com
ADMIN=(-Y EXTERNAL -Q -H "$LDAPI")
cli() { "$TESSERA" "$@" --config "$WORK/tessera.toml"; }
SERVICE="uid=demo_service,ou=services,$SUFFIX"

expect_contains "person create" "created uid=demo_user,ou=people,$SUFFIX" \
    cli person create demo_user "Demo User" --posix
expect_rc "person set-password" 0 env TESSERA_NEW_PASSWORD=demo-password \
    "$TESSERA" person set-password demo_user --config "$WORK/tessera.toml"
expect_contains "group create" "created cn=demo_group,ou=groups,$SUFFIX" cli group create demo_group
expect_rc "group add-members" 0 cli group add-members demo_group demo_user
expect_contains "service-account create" "created $SERVICE" \
    cli service-account create demo_service "Demonstration Service" demo_group
expect_contains "service-account get shows the manager" "entryManagedBy: cn=demo_group,ou=groups,$SUFFIX" \
    cli service-account get demo_service
expect_rc "a bad account name is refused" 19 cli service-account create Demo "Bad" demo_group
REFUSAL=$(cli service-account create Demo Bad demo_group 2>&1 || true)
if grep -q "lowercase letters" <<<"$REFUSAL" && grep -q "'D'" <<<"$REFUSAL"; then
    pass "the refusal states the rule and the offending character"
else
    fail "the refusal states the rule: $REFUSAL"
fi

# demo_user, a member of demo_group, mints a read-only token from "their workstation".
as_user=(env TESSERA_PASSWORD=demo-password "$TESSERA" service-account api-token
    -H "$LDAPS" --name demo_user --config "$WORK/tessera.toml")
"${as_user[@]}" generate demo_service "Test Token" >"$WORK/ro.out" 2>"$WORK/ro.err" || true
RO=$(tr -d '\n' <"$WORK/ro.out")
if [[ "$RO" =~ ^tsr_[A-Za-z0-9_]+$ ]] && [ ${#RO} -le 64 ] && grep -q "not be shown again" "$WORK/ro.err"; then
    pass "api-token generate as the manager prints a token of ${#RO} characters, once"
else
    fail "api-token generate: '$RO' $(cat "$WORK/ro.err")"
fi
expect_contains "ldapwhoami with dn=token" "dn:$SERVICE" ldapwhoami -x -H "$LDAPS" -D dn=token -w "$RO"
expect_contains "ldapwhoami with the account's DN" "dn:$SERVICE" ldapwhoami -x -H "$LDAPS" -D "$SERVICE" -w "$RO"
expect_contains "ldapwhoami over StartTLS" "dn:$SERVICE" ldapwhoami -x -ZZ -H "$LDAP" -D dn=token -w "$RO"
expect_rc "the token with another DN is 49" 49 ldapwhoami -x -H "$LDAPS" -D "uid=demo_user,ou=people,$SUFFIX" -w "$RO"
expect_rc "a token bind over cleartext is 13" 13 ldapwhoami -x -H "$LDAP" -D dn=token -w "$RO"
grant directory-readers "$SERVICE"
expect_contains "ldapsearch with the token" "dn: uid=demo_user,ou=people,$SUFFIX" \
    ldapsearch -x -H "$LDAPS" -D dn=token -w "$RO" -b "ou=people,$SUFFIX" "(uid=demo_user)" uid
expect_contains "api-token status lists it, read-only" "read-only" "${as_user[@]}" status demo_service
# secret TOKEN: the 33-character secret inside a token (tsr_, 12-character id, _, secret,
# 6-character checksum): a log or dump holding it alone leaks the token as surely.
secret() { printf '%s' "${1:17:33}"; }
expect_absent "the token and its secret are absent from a full directory dump" "dn: uid=demo_user,ou=people,$SUFFIX" \
    "$RO"$'\n'"$(secret "$RO")" unfolded ldapsearch "${ADMIN[@]}" -b "$SUFFIX" '(objectClass=*)' '*' +

# Writing takes the account's write rights (here: service-account-admins) and a read-write token.
printf 'dn: cn=service-account-admins,ou=roles,%s\nchangetype: modify\nadd: member\nmember: %s\n' \
    "$SUFFIX" "$SERVICE" | ldapmodify "${ADMIN[@]}" >/dev/null
printf 'dn: uid=made_by_token,ou=services,%s\nobjectClass: tesseraServiceAccount\nuid: made_by_token\ncn: made_by_token\nentryManagedBy: cn=demo_group,ou=groups,%s\n' \
    "$SUFFIX" "$SUFFIX" >"$WORK/new-account.ldif"
expect_rc "ldapadd with the read-only token is 50" 50 ldapadd -x -H "$LDAPS" -D dn=token -w "$RO" -f "$WORK/new-account.ldif"
printf 'dn: %s\nchangetype: modify\nreplace: description\ndescription: by the read-only token\n' "$SERVICE" \
    >"$WORK/ro-modify.ldif"
expect_rc "ldapmodify with the read-only token is 50" 50 ldapmodify -x -H "$LDAPS" -D dn=token -w "$RO" -f "$WORK/ro-modify.ldif"
RW=$("${as_user[@]}" generate demo_service "Write Token" 30d --rw 2>/dev/null | tr -d '\n')
expect_rc "ldapadd with the read-write token" 0 ldapadd -x -H "$LDAPS" -D dn=token -w "$RW" -f "$WORK/new-account.ldif"

# Rotation: the new token works and the old one lives through the overlap.
RO_ID=$(ldapsearch "${ADMIN[@]}" -LLL -b "$SERVICE" "(tokenLabel=Test Token)" tokenId | sed -n 's/^tokenId: //p')
NEW=$("${as_user[@]}" rotate demo_service "$RO_ID" --overlap 1h 2>/dev/null | tr -d '\n')
expect_contains "the rotated token binds" "dn:$SERVICE" ldapwhoami -x -H "$LDAPS" -D dn=token -w "$NEW"
expect_contains "the old token lives through the overlap" "dn:$SERVICE" ldapwhoami -x -H "$LDAPS" -D dn=token -w "$RO"

expect_rc "api-token destroy" 0 "${as_user[@]}" destroy demo_service "$RO_ID"
expect_rc "the destroyed token's next bind is 49" 49 ldapwhoami -x -H "$LDAPS" -D dn=token -w "$RO"
cli person create other_user "Other User" >/dev/null
env TESSERA_NEW_PASSWORD=other-password "$TESSERA" person set-password other_user --config "$WORK/tessera.toml" >/dev/null
expect_rc "someone outside demo_group cannot mint (50)" 50 env TESSERA_PASSWORD=other-password \
    "$TESSERA" service-account api-token generate demo_service t -H "$LDAPS" --name other_user \
    --config "$WORK/tessera.toml"
expect_rc "a wrong password for the CLI is 49" 49 env TESSERA_PASSWORD=wrong \
    "$TESSERA" service-account list -H "$LDAPS" --name demo_user --config "$WORK/tessera.toml"
SECRETS="$RO"$'\n'"$RW"$'\n'"$NEW"$'\n'"$(secret "$RO")"$'\n'"$(secret "$RW")"$'\n'"$(secret "$NEW")"
expect_absent "no token nor its secret appears in the server's log" "event=\"bind\"" "$SECRETS" \
    log_text "$WORK/server.log" "$WORK/stdout.log"
expect_absent "no token nor its secret appears in a full directory dump, after rotation and destroy" \
    "dn: uid=made_by_token,ou=services,$SUFFIX" "$SECRETS" unfolded ldapsearch "${ADMIN[@]}" -b "$SUFFIX" '(objectClass=*)' '*' +
# The audit log names each token event and the token it concerns (a field's value is
# quoted or not, as tracing writes it).
audit() { # NAME EVENT TOKEN_ID_FIELD TOKEN_ID
    if [[ "$4" =~ ^[A-Za-z0-9]{12}$ ]] && log_text "$WORK/server.log" | grep "event=\"$2\"" | grep -qE "$3=\"?$4(\"| |\$)"; then
        pass "$1"
    else
        fail "$1: no $2 event with $3=$4 in: $(log_text "$WORK/server.log" | grep -E 'token-' | tail -5)"
    fi
}
audit "the audit log has the read-only token's generation" token-generated token_id "$RO_ID"
audit "the audit log has its rotation" token-rotated old_token_id "$RO_ID"
audit "the audit log has its revocation (destroy)" token-revoked token_id "$RO_ID"
stop_server
expect_absent "no token nor its secret appears in an export" "dn: $SERVICE" "$SECRETS" \
    unfolded "$TESSERA" db export --config "$WORK/tessera.toml"
finish
