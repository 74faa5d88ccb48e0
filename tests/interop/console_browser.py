"""The web console in a real browser: Debian's chromium driven by Playwright for Python.

Run by console.sh, which starts the server, seeds the people and groups below and passes
their addresses in the environment. Prints "ok   - NAME" / "FAIL - NAME" lines (relayed
by lib.sh) and saves screenshots of the main screens in $SHOTS. Secrets read from the
page are used to bind with ldapwhoami, never printed.
"""

import os
import re
import subprocess
import sys
import tempfile

from playwright.sync_api import expect, sync_playwright

CONSOLE = os.environ["CONSOLE"]
LDAPS = os.environ["LDAPS"]
SHOTS = os.environ["SHOTS"]
TESSERA = os.environ["TESSERA"]
CONFIG = os.environ["CONFIG"]
SERVICES = "ou=services,dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"
failures = 0


def ok(name):
    print(f"ok   - {name}", flush=True)


def fail(name, why=""):
    global failures
    failures += 1
    print(f"FAIL - {name}{': ' + why if why else ''}", flush=True)


def check(name, condition, why=""):
    (ok if condition else lambda n: fail(n, why))(name)


def bind(dn, secret):
    """ldapwhoami's exit status binding as dn with secret."""
    return subprocess.run(
        ["ldapwhoami", "-H", LDAPS, "-x", "-D", dn, "-w", secret],
        capture_output=True,
    ).returncode


def sign_in_link():
    out = subprocess.run(
        [TESSERA, "console", "sign-in-link", "--config", CONFIG],
        capture_output=True, text=True, check=True,
    ).stdout
    return re.search(r"(https://\S+#\S+)", out).group(1)


def shot(page, name, mask=()):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True, mask=list(mask), mask_color="#d0d7de")


def sign_in(page, name, password):
    page.goto(f"{CONSOLE}/console/sign-in")
    page.get_by_label("Your id (or DN)").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{CONSOLE}/console")


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/sign-in\?ended=signed-out$"))


def chromium(p, home):
    """Debian's chromium with `home` as its HOME, where it finds its NSS certificate store."""
    return p.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"],
        env={**os.environ, "HOME": home},
    )


def trust_ca(home):
    """Make `home`'s NSS store trust the server's generated CA, as an admin's browser does
    after importing ca.pem: the console's certificate is then checked, chain and name."""
    store = os.path.join(home, ".pki", "nssdb")
    os.makedirs(store)
    subprocess.run(["certutil", "-N", "-d", f"sql:{store}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{store}", "-n", "tessera-ca", "-t", "C,,",
                    "-i", os.environ["LDAPTLS_CACERT"]], check=True)


def main():
    with sync_playwright() as p, tempfile.TemporaryDirectory() as bare, \
            tempfile.TemporaryDirectory() as home:
        # Without the CA the browser refuses the console: the store below is what makes
        # the difference.
        stranger = chromium(p, bare)
        try:
            stranger.new_page().goto(f"{CONSOLE}/console/sign-in")
            fail("a browser that does not trust the CA refuses the console")
        except Exception as e:
            check("a browser that does not trust the CA refuses the console",
                  "ERR_CERT" in str(e), str(e)[:200])
        stranger.close()
        trust_ca(home)
        browser = chromium(p, home)
        print(f"     browser {browser.version}")
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        errors = []
        # Refusals are 4xx pages (the browser logs "Failed to load resource" for them);
        # anything else logged as an error (a script blocked by the policy) is a failure.
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)

        # The local administrator: the link from the CLI, used once.
        link = sign_in_link()
        page.goto(link)
        page.wait_for_url(f"{CONSOLE}/console")
        check("the sign-in link signs the local administrator in", "local administrator" in page.content())
        check("the link's code is gone from the address bar and history", "#" not in page.url)
        cookies = context.cookies()
        session = [c for c in cookies if c["name"] == "__Host-tessera-console"]
        check("the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict",
              len(session) == 1 and session[0]["httpOnly"] and session[0]["secure"]
              and session[0]["sameSite"] == "Strict" and session[0]["path"] == "/",
              str(session and {k: session[0][k] for k in ("httpOnly", "secure", "sameSite", "path")}))
        shot(page, "overview")
        other = browser.new_context().new_page()
        other.goto(link)
        check("the link works once", "not valid" in other.content())
        other.context.close()

        # A service account, its token shown once, bound with, revoked.
        page.get_by_role("link", name="Service accounts", exact=True).click()
        page.get_by_role("link", name="New service account").click()
        page.get_by_label("Name", exact=True).fill("nas-01")
        page.get_by_label("Managed by").fill("nas-owners")
        page.get_by_label("Description").fill("The NAS in the office")
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_role("heading", name="Service account nas-01")).to_be_visible()
        ok("a service account is made")
        page.get_by_label("Label").fill("nas-ldap")
        page.get_by_role("button", name="Generate").click()
        expect(page.get_by_role("heading", name="Token generated")).to_be_visible()
        token = page.locator("#secret").inner_text().strip()
        check("the token is shown once, with a copy button", len(token) > 20
              and page.get_by_role("button", name="Copy").is_visible())
        check("the token is in no address", token not in page.url)
        shot(page, "token-shown-once", mask=[page.locator("#secret")])
        dn = f"uid=nas-01,{SERVICES}"
        check("ldapwhoami binds with the token", bind(dn, token) == 0)
        page.get_by_role("link", name=re.compile("Done")).click()
        check("the account's page does not show the secret again", token not in page.content())
        shot(page, "service-account")
        page.get_by_role("link", name="Revoke…").click()
        page.get_by_role("button", name="Revoke").click()
        expect(page.get_by_text("Revoked the token")).to_be_visible()
        check("after revocation the bind fails (49)", bind(dn, token) == 49)
        page.goto(f"{CONSOLE}/console/audit?kind=token-revoked")
        check("the audit page lists the revocation", "token-revoked" in page.content())
        shot(page, "audit")
        # The member picker: htmx fills the datalist as one types (under the strict policy).
        page.goto(f"{CONSOLE}/console/groups/nas-owners")
        page.locator("#pick").press_sequentially("bo", delay=50)
        option = page.locator("#pick-list option").first
        option.wait_for(state="attached", timeout=5000)
        page.locator("#pick").fill(option.get_attribute("value"))
        page.get_by_role("button", name="Change members").click()
        check("the picker offers bob, who joins nas-owners",
              page.locator('a[href="/console/people/bob"]').count() >= 1)
        shot(page, "group")
        page.goto(f"{CONSOLE}/console/see-as?as=nas-01")
        shot(page, "see-as")
        sign_out(page)
        page.goto(f"{CONSOLE}/console")
        check("sign-out ends the session", page.url.startswith(f"{CONSOLE}/console/sign-in"))
        check("sign-out removes the cookie",
              not [c for c in context.cookies() if c["name"] == "__Host-tessera-console"])

        # A people-admins holder: sees people, may not touch a directory administrator.
        sign_in(page, "pam", "pw-pam")
        page.get_by_role("link", name="People", exact=True).click()
        check("pam lists people", page.get_by_role("link", name="dana", exact=True).count() == 1)
        shot(page, "people")
        page.get_by_role("link", name="pat", exact=True).click()
        check("pam is offered to reset pat's password",
              page.get_by_role("button", name="Set the password").count() == 1)
        page.goto(f"{CONSOLE}/console/people/dana")
        check("pam is offered no reset of dana's password, and is told why",
              page.get_by_role("button", name="Set the password").count() == 0
              and "they hold directory-admins" in page.content())
        # A form posted anyway (an old page, a crafted request) is refused the same way.
        page.evaluate("""csrf => {
            const f = document.createElement('form');
            f.method = 'post'; f.action = '/console/people/dana/password';
            for (const [k, v] of [['csrf', csrf], ['password', 'taken-over']]) {
                const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i);
            }
            document.body.append(f); f.submit();
        }""", page.locator('input[name="csrf"]').first.get_attribute("value"))
        page.wait_for_load_state()
        alert = page.get_by_role("alert").inner_text()
        check("pam may not reset dana's password, and is told why",
              "they hold directory-admins" in alert, alert)
        shot(page, "refused")
        check("dana's password still binds", bind(f"uid=dana,{PEOPLE}", "pw-dana") == 0)
        page.goto(f"{CONSOLE}/console/service-accounts")
        check("pam sees no service accounts", "nas-01" not in page.content())
        page.goto(f"{CONSOLE}/console/groups/admins")
        page.get_by_label(re.compile("^Add")).fill(f"uid=pam,{PEOPLE}")
        page.get_by_role("button", name="Change members").click()
        alert = page.get_by_role("alert").inner_text()
        check("pam may not add herself to the administrators' group, and is told why",
              "directory-admins" in alert, alert)
        sign_out(page)

        # Self-service: bob's app password, used to bind; his own password changed.
        sign_in(page, "bob", "pw-bob")
        page.get_by_role("link", name="My account", exact=True).click()
        page.get_by_label("Device or program").fill("laptop-mail")
        page.get_by_role("button", name="New app password").click()
        secret = page.locator("#secret").inner_text().strip()
        bob = f"uid=bob,{PEOPLE}"
        check("bob binds with his new app password", bind(bob, secret) == 0)
        page.get_by_role("link", name=re.compile("Done")).click()
        shot(page, "my-account")
        page.get_by_label("New password", exact=True).fill("pw-bob-2")
        page.get_by_label("New password again").fill("pw-bob-2")
        page.get_by_role("button", name="Change").click()
        check("bob changes his own password", bind(bob, "pw-bob-2") == 0 and bind(bob, "pw-bob") == 49)
        page.set_viewport_size({"width": 390, "height": 800})
        shot(page, "phone")
        sign_out(page)
        check("no script errors in the pages (CSP)", not errors, "; ".join(errors))
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a step that could not run is a failure, with its reason
        fail("the browser run", f"{type(e).__name__}: {e}")
    sys.exit(1 if failures else 0)
