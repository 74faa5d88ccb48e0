#!/usr/bin/env bash
# The web console in a real browser (Debian's chromium, driven by Playwright for Python,
# pinned by .ci/run): the local administrator signs in with a link from the CLI, makes a
# service account, reads its token from the page once, binds with it using ldapwhoami,
# revokes it and the bind fails; a people-admins holder is refused what it may not do, in
# words; a person makes an app password and binds with it; sign-out ends the session.
# Screenshots of the main screens go to tests/console/.
source "$(dirname "$0")/lib.sh"

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PLAYWRIGHT_PYTHON=${PLAYWRIGHT_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera-ci/playwright-1.65.2/bin/python}
if [ ! -x "$PLAYWRIGHT_PYTHON" ] || [ ! -x /usr/bin/chromium ]; then
    fail "Playwright ($PLAYWRIGHT_PYTHON) and /usr/bin/chromium are needed (.ci/run installs both)"
    finish
fi
start_server

ldapadd -Y EXTERNAL -Q -H "$LDAPI" >/dev/null <<LDIF
dn: uid=dana,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dana
cn: Dana Admin
sn: Admin
userPassword: pw-dana

dn: uid=pam,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: pam
cn: Pam People
sn: People
userPassword: pw-pam

dn: uid=pat,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: pat
cn: Pat Plain
sn: Plain
userPassword: pw-pat

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob <b>Builder</b>
sn: Builder
mail: bob@example.com
userPassword: pw-bob

dn: cn=nas-owners,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: nas-owners
member: uid=dana,ou=people,dc=example,dc=com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=dana,ou=people,dc=example,dc=com
LDIF
grant directory-admins "uid=dana,ou=people,dc=example,dc=com"
grant directory-admins "cn=admins,ou=groups,dc=example,dc=com"
grant people-admins "uid=pam,ou=people,dc=example,dc=com"

SHOTS="$ROOT/tests/console"
mkdir -p "$SHOTS"
CONSOLE="$API" LDAPS="$LDAPS" SHOTS="$SHOTS" TESSERA="$TESSERA" CONFIG="$WORK/tessera.toml" \
    "$PLAYWRIGHT_PYTHON" "$(dirname "$0")/console_browser.py" >"$WORK/browser.out" 2>&1 || true
relay "$WORK/browser.out"
shots=$(find "$SHOTS" -name '*.png' -newer "$WORK/tessera.toml" | wc -l)
at_least "screenshots of the main screens saved in tests/console/" 6 "$shots"
expect_absent "no secret or session id in the server's log" 'console-sign-in-link' \
    "pw-dana"$'\n'"pw-bob"$'\n'"__Host-tessera-console=" log_text "$WORK/server.log"
finish
