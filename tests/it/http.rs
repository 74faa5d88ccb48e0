//! The HTTP API through the real server: an HTTPS client verifying the generated CA, every
//! endpoint, the rights exactly as over LDAP, token intents, revocation on the next
//! request, the secret in the create response only, bad input answered with 4xx problem
//! details, the audit trail, health, metrics and the OpenAPI document.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ldap3::Scope;
use serde_json::{Value, json};

use crate::tokens::{add_service, generate, service_dn};
use crate::{SUFFIX, TestServer, add_person, grant, person_dn, search};

/// An HTTPS client of one server.
pub struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
    /// An Authorization header as given.
    Header(&'a str),
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Assert the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status, status, "{}", self.text());
        self
    }
}

impl Client {
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Client {
        Client { addr, tls }
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.raw("GET", path, auth, None, Vec::new()).await
    }

    pub async fn delete(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.raw("DELETE", path, auth, None, Vec::new()).await
    }

    /// A request with a JSON body.
    pub async fn send(&self, method: &str, path: &str, auth: Auth<'_>, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.raw(method, path, auth, Some("application/json"), bytes)
            .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.addr.port()));
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Auth::Basic(u, p) => {
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                req = req.header("authorization", format!("Basic {pair}"));
            }
            Auth::Header(h) => req = req.header("authorization", h),
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let response = sender.send_request(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}

/// A directory administrator over HTTP: the service account `automation`, holding
/// directory-admins, and its read-write http-api token.
pub async fn api_admin(server: &TestServer) -> String {
    let mut admin = server.admin().await;
    assert_eq!(add_service(&mut admin, "automation", None).await, 0);
    grant(&mut admin, "directory-admins", &service_dn("automation")).await;
    generate(
        &mut admin,
        &service_dn("automation"),
        "api",
        Some("read-write"),
        None,
        Some("http-api"),
    )
    .await
    .unwrap()
    .token
}

/// An LDAP simple bind's result code.
pub async fn ldap_bind(server: &TestServer, dn: &str, secret: &str) -> u32 {
    let mut ldap = server.ldaps().await;
    ldap.simple_bind(dn, secret).await.unwrap().rc
}

#[tokio::test]
async fn the_document_health_and_metrics_are_served() {
    let server = TestServer::start().await;
    let http = server.http();
    let doc = http.get("/api/v1/openapi.json", Auth::None).await;
    doc.expect(200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc, serde_json::to_value(tessera::http::openapi()).unwrap());
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/whoami", &["get"][..]),
        ("/api/v1/search", &["post"]),
        ("/api/v1/people", &["get", "post"]),
        ("/api/v1/people/{uid}", &["get", "patch", "delete"]),
        ("/api/v1/people/{uid}/password", &["put"]),
        ("/api/v1/people/{uid}/app-passwords", &["get", "post"]),
        ("/api/v1/people/{uid}/app-passwords/{id}", &["delete"]),
        ("/api/v1/people/{uid}/app-passwords/{id}/rotate", &["post"]),
        ("/api/v1/groups", &["get", "post"]),
        ("/api/v1/groups/{cn}", &["get", "patch", "delete"]),
        ("/api/v1/groups/{cn}/members", &["patch"]),
        ("/api/v1/service-accounts", &["get", "post"]),
        (
            "/api/v1/service-accounts/{name}",
            &["get", "patch", "delete"],
        ),
        ("/api/v1/service-accounts/{name}/tokens", &["get", "post"]),
        ("/api/v1/service-accounts/{name}/tokens/{id}", &["delete"]),
        (
            "/api/v1/service-accounts/{name}/tokens/{id}/rotate",
            &["post"],
        ),
        ("/api/v1/roles", &["get", "post"]),
        ("/api/v1/roles/{cn}", &["get", "patch", "delete"]),
        ("/api/v1/roles/{cn}/members", &["patch"]),
        ("/api/v1/audit", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
    ] {
        for m in methods {
            let op = &paths[path][*m];
            assert!(op.is_object(), "{m} {path} documented");
            if path.starts_with("/api") {
                assert!(
                    op["responses"]["403"].is_object(),
                    "{m} {path}: its refusals"
                );
                assert!(op["security"].is_array(), "{m} {path}: how to authenticate");
            }
        }
    }
    assert_eq!(paths.len(), 22, "every route, no more: {:?}", paths.keys());

    let health = http.get("/healthz", Auth::None).await;
    health.expect(200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.header("cache-control"), "no-store");
    http.get("/readyz", Auth::None).await.expect(200);

    // A bind, so the counters have something in them.
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "pw").await, 0);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "no").await, 49);
    let metrics = http.get("/metrics", Auth::None).await;
    metrics.expect(200);
    assert!(
        metrics
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for needle in [
        "tessera_binds_total{method=\"password\",result=\"success\"}",
        "tessera_binds_total{method=\"password\",result=\"invalid_credentials\"}",
        "tessera_operations_total{protocol=\"ldap\",operation=\"add\",result=\"success\"} 1",
        "protocol=\"ldap\",operation=\"bind\"} ",
        "tessera_connections_open{listener=\"ldaps\"}",
        "tessera_connections_accepted_total{listener=\"https\"}",
        "tessera_store_commit_duration_seconds_count",
        "tessera_store_file_size_bytes ",
        "tessera_tokens{state=\"active\"} 0",
        "tessera_certificate_expiry_timestamp_seconds ",
        "tessera_password_hash_waits_total",
        "tessera_search_entries_returned_bucket",
        "tessera_build_info{version=",
        "# TYPE tessera_binds_total counter",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(
        !text.contains("uid=") && !text.contains("dc=example"),
        "no names in labels"
    );
    server.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_minted_for_http_and_checked_on_every_request() {
    let server = TestServer::start().await;
    let http = server.http();
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    grant(&mut admin, "directory-readers", &service_dn("nas01")).await;
    let nas = service_dn("nas01");
    let ldap_token = generate(&mut admin, &nas, "ldap", None, None, None)
        .await
        .unwrap();
    let http_token = generate(&mut admin, &nas, "http", None, None, Some("http-api"))
        .await
        .unwrap();

    let none = http.get("/api/v1/whoami", Auth::None).await;
    none.expect(401);
    assert_eq!(none.header("content-type"), "application/problem+json");
    assert!(none.header("www-authenticate").contains("Bearer"));
    assert_eq!(none.json()["code"], "unauthenticated");

    // An LDAP token cannot drive the API, and an API token cannot bind over LDAP.
    let refused = http
        .get("/api/v1/whoami", Auth::Bearer(&ldap_token.token))
        .await;
    refused.expect(401);
    assert_eq!(refused.json()["code"], "invalid_credentials");
    assert_eq!(ldap_bind(&server, "dn=token", &http_token.token).await, 49);
    assert_eq!(ldap_bind(&server, &nas, &http_token.token).await, 49);
    assert_eq!(ldap_bind(&server, "dn=token", &ldap_token.token).await, 0);

    let me = http
        .get("/api/v1/whoami", Auth::Bearer(&http_token.token))
        .await;
    me.expect(200);
    let me = me.json();
    assert_eq!(me["dn"], nas);
    assert_eq!(me["kind"], "service-account");
    assert_eq!(me["read_only"], true);
    assert_eq!(me["token_id"], http_token.id.as_str());
    assert!(
        me["roles"].to_string().contains("cn=directory-readers"),
        "{me}"
    );

    // People authenticate with Basic and their password, never with a token.
    let alice = http.get("/api/v1/whoami", Auth::Basic("alice", "pw")).await;
    alice.expect(200);
    assert_eq!(alice.json()["dn"], person_dn("alice"));
    assert_eq!(alice.json()["kind"], "person");
    let by_dn = http
        .get("/api/v1/whoami", Auth::Basic(&person_dn("alice"), "pw"))
        .await;
    by_dn.expect(200);
    http.get("/api/v1/whoami", Auth::Basic("alice", "wrong"))
        .await
        .expect(401);
    http.get("/api/v1/whoami", Auth::Basic("nobody", "pw"))
        .await
        .expect(401);
    http.get("/api/v1/whoami", Auth::Basic("alice", &http_token.token))
        .await
        .expect(401);
    for header in [
        "Bearer",
        "Basic !!!",
        "Digest x",
        "Bearer tsr_nonsense",
        "Basic Zm9v",
    ] {
        let r = http.get("/api/v1/whoami", Auth::Header(header)).await;
        r.expect(401);
    }

    // Revoked: refused from the next request on.
    let token_dn = format!("tokenId={},{nas}", http_token.id);
    admin.delete(&token_dn).await.unwrap().success().unwrap();
    http.get("/api/v1/whoami", Auth::Bearer(&http_token.token))
        .await
        .expect(401);

    // Expired: the same.
    let short = generate(
        &mut admin,
        &nas,
        "short",
        None,
        Some("1h"),
        Some("http-api"),
    )
    .await
    .unwrap();
    http.get("/api/v1/whoami", Auth::Bearer(&short.token))
        .await
        .expect(200);
    server
        .running()
        .state
        .clock
        .advance(std::time::Duration::from_secs(2 * 3600));
    http.get("/api/v1/whoami", Auth::Bearer(&short.token))
        .await
        .expect(401);
    server.stop().await;
}

#[tokio::test]
async fn failed_api_authentications_are_throttled_like_binds() {
    let server = TestServer::start_with(
        "[throttle]\nfree_failures = 2\nbase_delay = \"300ms\"\nmax_delay = \"300ms\"\n",
    )
    .await;
    let http = server.http();
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    for _ in 0..2 {
        http.get("/api/v1/whoami", Auth::Basic("alice", "wrong"))
            .await
            .expect(401);
    }
    let started = std::time::Instant::now();
    http.get("/api/v1/whoami", Auth::Basic("alice", "wrong"))
        .await
        .expect(401);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "the third failure is held"
    );
    let now = server.running().state.clock.now();
    let throttled = server.running().state.throttle.throttled(now);
    assert!(
        throttled
            .iter()
            .any(|t| t.account == person_dn("alice").to_lowercase()),
        "one throttle for LDAP and HTTP: {throttled:?}"
    );
    // The right password is never held, and the LDAP bind shares the count.
    let started = std::time::Instant::now();
    http.get("/api/v1/whoami", Auth::Basic("alice", "pw"))
        .await
        .expect(200);
    assert!(started.elapsed() < std::time::Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test]
async fn service_accounts_and_tokens_over_http() {
    let server = TestServer::start().await;
    let http = server.http();
    let root = api_admin(&server).await;
    let root = Auth::Bearer(&root);
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;

    http.send(
        "POST",
        "/api/v1/groups",
        root,
        &json!({"cn": "owners", "members": ["alice"]}),
    )
    .await
    .expect(201);
    let created = http
        .send(
            "POST",
            "/api/v1/service-accounts",
            root,
            &json!({"name": "nas01", "display_name": "The NAS", "managed_by": "owners",
                    "description": "backups", "expires": "365d"}),
        )
        .await;
    created.expect(201);
    let account = created.json();
    assert_eq!(account["dn"], service_dn("nas01"));
    assert_eq!(
        account["attributes"]["entryManagedBy"][0],
        "cn=owners,ou=groups,dc=example,dc=com"
    );
    let list = http.get("/api/v1/service-accounts", root).await;
    list.expect(200);
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 2);
    http.send(
        "POST",
        "/api/v1/service-accounts",
        root,
        &json!({"name": "nas01", "display_name": "again", "managed_by": "owners"}),
    )
    .await
    .expect(409);

    let minted = http
        .send(
            "POST",
            "/api/v1/service-accounts/nas01/tokens",
            root,
            &json!({"label": "nas01 ldap", "expires": "30d"}),
        )
        .await;
    minted.expect(201);
    assert_eq!(minted.header("cache-control"), "no-store");
    let minted = minted.json();
    let (id, secret) = (
        minted["id"].as_str().unwrap().to_string(),
        minted["token"].as_str().unwrap().to_string(),
    );
    assert!(secret.starts_with("tsr_"), "{minted}");
    assert_eq!(ldap_bind(&server, "dn=token", &secret).await, 0);

    // Listed with its last use (recorded in the background), never with its secret.
    let mut token = Value::Null;
    for _ in 0..50 {
        let tokens = http
            .get("/api/v1/service-accounts/nas01/tokens", root)
            .await;
        tokens.expect(200);
        assert!(!tokens.text().contains(&secret[4..]), "no secret in a list");
        token = tokens.json()["items"][0].clone();
        if token["last_used"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(token["id"], id.as_str());
    assert_eq!(token["label"], "nas01 ldap");
    assert_eq!(token["scope"], "read-only");
    assert_eq!(token["intent"], "api-token");
    assert_eq!(token["state"], "ok");
    assert_eq!(token["creator"], service_dn("automation"));
    assert!(token["expires"].is_string() && token["created"].is_string());
    assert!(token["last_used"].is_string(), "{token}");

    // An account's manager mints and revokes; with Basic, as a person.
    let by_manager = http
        .send(
            "POST",
            "/api/v1/service-accounts/nas01/tokens",
            Auth::Basic("alice", "pw"),
            &json!({"label": "api", "intent": "http-api", "scope": "read-only"}),
        )
        .await;
    by_manager.expect(201);
    let api_token = by_manager.json()["token"].as_str().unwrap().to_string();
    let me = http.get("/api/v1/whoami", Auth::Bearer(&api_token)).await;
    me.expect(200);
    assert_eq!(me.json()["dn"], service_dn("nas01"));

    let rotated = http
        .send(
            "POST",
            &format!("/api/v1/service-accounts/nas01/tokens/{id}/rotate"),
            root,
            &json!({"overlap": "1h"}),
        )
        .await;
    rotated.expect(201);
    assert_eq!(rotated.header("cache-control"), "no-store");
    let rotated = rotated.json();
    assert!(rotated["old_expires"].is_string());
    let new_id = rotated["id"].as_str().unwrap().to_string();
    let new_secret = rotated["token"].as_str().unwrap().to_string();
    assert_eq!(ldap_bind(&server, "dn=token", &new_secret).await, 0);
    assert_eq!(ldap_bind(&server, "dn=token", &secret).await, 0, "overlap");

    http.delete(
        &format!("/api/v1/service-accounts/nas01/tokens/{new_id}"),
        root,
    )
    .await
    .expect(204);
    assert_eq!(ldap_bind(&server, "dn=token", &new_secret).await, 49);
    http.delete(
        &format!("/api/v1/service-accounts/nas01/tokens/{new_id}"),
        root,
    )
    .await
    .expect(404);

    // The account's update and deletion (with its tokens).
    let updated = http
        .send(
            "PATCH",
            "/api/v1/service-accounts/nas01",
            root,
            &json!({"changes": [{"op": "replace", "attribute": "description", "values": ["new"]}]}),
        )
        .await;
    updated.expect(200);
    assert_eq!(updated.json()["attributes"]["description"][0], "new");
    http.delete("/api/v1/service-accounts/nas01", root)
        .await
        .expect(204);
    assert_eq!(ldap_bind(&server, "dn=token", &secret).await, 49);
    http.get("/api/v1/service-accounts/nas01", root)
        .await
        .expect(404);

    // The trail has it all, by token.
    let trail = http.get(&format!("/api/v1/audit?token={id}"), root).await;
    trail.expect(200);
    let kinds: Vec<String> = trail.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in ["token-generated", "token-rotated", "bind", "token-revoked"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert!(!trail.text().contains(&secret[4..]));
    server.stop().await;
}

#[tokio::test]
async fn app_passwords_and_passwords_over_http() {
    let server = TestServer::start().await;
    let http = server.http();
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let alice = Auth::Basic("alice", "pw");
    let minted = http
        .send(
            "POST",
            "/api/v1/people/alice/app-passwords",
            alice,
            &json!({"label": "phone"}),
        )
        .await;
    minted.expect(201);
    let minted = minted.json();
    let secret = minted["token"].as_str().unwrap();
    assert_eq!(ldap_bind(&server, &person_dn("alice"), secret).await, 0);
    let listed = http.get("/api/v1/people/alice/app-passwords", alice).await;
    listed.expect(200);
    assert_eq!(listed.json()["items"][0]["intent"], "app-password");
    // An app password is not an API credential.
    http.get("/api/v1/whoami", Auth::Bearer(secret))
        .await
        .expect(401);
    http.send(
        "POST",
        "/api/v1/people/alice/app-passwords",
        alice,
        &json!({"label": "x", "intent": "http-api"}),
    )
    .await
    .expect(400);

    // Her own password: set, or generated and shown once.
    http.send(
        "PUT",
        "/api/v1/people/alice/password",
        alice,
        &json!({"password": "second"}),
    )
    .await
    .expect(204);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "second").await, 0);
    let generated = http
        .send(
            "PUT",
            "/api/v1/people/alice/password",
            Auth::Basic("alice", "second"),
            &json!({}),
        )
        .await;
    generated.expect(200);
    assert_eq!(generated.header("cache-control"), "no-store");
    let password = generated.json()["password"].as_str().unwrap().to_string();
    assert_eq!(ldap_bind(&server, &person_dn("alice"), &password).await, 0);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "second").await, 49);
    // Another's password takes the reset right over them.
    add_person(&mut admin, "bob", "pw", false).await;
    let refused = http
        .send(
            "PUT",
            "/api/v1/people/bob/password",
            Auth::Basic("alice", &password),
            &json!({"password": "mine"}),
        )
        .await;
    refused.expect(403);
    assert_eq!(refused.json()["ldap_result"], 50);
    let id = minted["id"].as_str().unwrap();
    http.delete(
        &format!("/api/v1/people/alice/app-passwords/{id}"),
        Auth::Basic("alice", &password),
    )
    .await
    .expect(204);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), secret).await, 49);
    server.stop().await;
}

#[tokio::test]
async fn rights_are_the_callers_own_as_over_ldap() {
    let server = TestServer::start().await;
    let http = server.http();
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "pam", "pw-pam", false).await;
    grant(&mut admin, "people-admins", &person_dn("pam")).await;
    assert_eq!(add_service(&mut admin, "reader", None).await, 0);
    grant(&mut admin, "directory-readers", &service_dn("reader")).await;
    let reader = generate(
        &mut admin,
        &service_dn("reader"),
        "api",
        Some("read-write"),
        None,
        Some("http-api"),
    )
    .await
    .unwrap()
    .token;
    let reader = Auth::Bearer(&reader);

    // A directory-readers token reads what it reads over LDAP, and writes nothing.
    let people = http.get("/api/v1/people", reader).await;
    people.expect(200);
    let dns: Vec<String> = people.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dn"].as_str().unwrap().to_string())
        .collect();
    let mut reader_ldap = server.ldaps().await;
    let token = generate(&mut admin, &service_dn("reader"), "l", None, None, None)
        .await
        .unwrap();
    reader_ldap
        .simple_bind("dn=token", &token.token)
        .await
        .unwrap()
        .success()
        .unwrap();
    let (seen, rc) = search(
        &mut reader_ldap,
        "ou=people,dc=example,dc=com",
        Scope::OneLevel,
        "(objectClass=person)",
        &["1.1"],
    )
    .await;
    assert_eq!(rc, 0);
    let mut over_ldap: Vec<String> = seen.into_iter().map(|e| e.dn).collect();
    let mut over_http = dns.clone();
    over_ldap.sort();
    over_http.sort();
    assert_eq!(over_http, over_ldap);
    let alice = http.get("/api/v1/people/alice", reader).await;
    alice.expect(200);
    assert!(alice.json()["attributes"]["userPassword"].is_null());
    http.get("/api/v1/service-accounts", reader)
        .await
        .expect(404);
    for (method, path, body) in [
        ("POST", "/api/v1/people", json!({"uid": "x"})),
        (
            "PATCH",
            "/api/v1/people/alice",
            json!({"changes": [{"op": "replace", "attribute": "mail", "values": ["a@b"]}]}),
        ),
        (
            "PUT",
            "/api/v1/people/alice/password",
            json!({"password": "x"}),
        ),
        ("POST", "/api/v1/groups", json!({"cn": "x"})),
    ] {
        let r = http.send(method, path, reader, &body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["code"], "insufficient_access_rights");
    }
    http.delete("/api/v1/people/alice", reader)
        .await
        .expect(403);

    // A people-admins holder manages people, not roles nor services.
    let pam = Auth::Basic("pam", "pw-pam");
    http.send(
        "POST",
        "/api/v1/people",
        pam,
        &json!({"uid": "bob", "display_name": "Bob Example", "password": "pw-bob", "posix": true}),
    )
    .await
    .expect(201);
    assert_eq!(ldap_bind(&server, &person_dn("bob"), "pw-bob").await, 0);
    let bob = http.get("/api/v1/people/bob", pam).await;
    bob.expect(200);
    assert!(
        bob.json()["attributes"]["uidNumber"].is_array(),
        "allocated"
    );
    assert_eq!(bob.json()["attributes"]["sn"][0], "Example");
    http.send(
        "PATCH",
        "/api/v1/people/bob",
        pam,
        &json!({"changes": [{"op": "add", "attribute": "mail", "values": ["bob@example.com"]}]}),
    )
    .await
    .expect(200);
    let r = http
        .send(
            "POST",
            "/api/v1/roles",
            pam,
            &json!({"cn": "mine", "bases": ["people"], "rights": ["all"]}),
        )
        .await;
    r.expect(403);
    http.send(
        "POST",
        "/api/v1/service-accounts",
        pam,
        &json!({"name": "svc", "display_name": "x", "managed_by": "pam"}),
    )
    .await
    .expect(403);
    http.delete("/api/v1/people/bob", pam).await.expect(204);
    http.get("/api/v1/people/bob", pam).await.expect(404);
    server.stop().await;
}

#[tokio::test]
async fn groups_and_roles_with_members_and_paging() {
    let server = TestServer::start().await;
    let http = server.http();
    let root = api_admin(&server).await;
    let root = Auth::Bearer(&root);
    let mut admin = server.admin().await;
    for uid in ["alice", "bob"] {
        add_person(&mut admin, uid, "pw", false).await;
    }
    let staff = http
        .send(
            "POST",
            "/api/v1/groups",
            root,
            &json!({"cn": "staff", "posix": true, "members": ["alice"], "description": "all"}),
        )
        .await;
    staff.expect(201);
    assert!(staff.json()["attributes"]["gidNumber"].is_array());
    let changed = http
        .send(
            "PATCH",
            "/api/v1/groups/staff/members",
            root,
            &json!({"add": ["bob"], "remove": ["alice"]}),
        )
        .await;
    changed.expect(200);
    assert_eq!(
        changed.json()["attributes"]["member"],
        json!([person_dn("bob")])
    );
    let bob = http.get("/api/v1/people/bob", root).await;
    assert_eq!(
        bob.json()["attributes"]["memberOf"],
        json!(["cn=staff,ou=groups,dc=example,dc=com"])
    );
    http.send("PATCH", "/api/v1/groups/staff/members", root, &json!({}))
        .await
        .expect(400);
    http.send(
        "PATCH",
        "/api/v1/groups/staff/members",
        root,
        &json!({"add": ["bob"]}),
    )
    .await
    .expect(409);

    let role = http
        .send(
            "POST",
            "/api/v1/roles",
            root,
            &json!({"cn": "nas-readers", "bases": ["people"], "rights": ["read"],
                    "filter": "(memberOf=cn=staff,ou=groups,dc=example,dc=com)", "members": ["staff"]}),
        )
        .await;
    role.expect(201);
    assert_eq!(
        role.json()["attributes"]["roleScopeBase"][0],
        "ou=people,dc=example,dc=com"
    );
    http.send(
        "POST",
        "/api/v1/roles",
        root,
        &json!({"cn": "bad", "bases": ["people"], "rights": ["fly"]}),
    )
    .await
    .expect(422);
    http.send(
        "PATCH",
        "/api/v1/roles/nas-readers/members",
        root,
        &json!({"remove": ["staff"]}),
    )
    .await
    .expect(200);
    http.get("/api/v1/roles/nas-readers", root)
        .await
        .expect(200);
    http.delete("/api/v1/roles/nas-readers", root)
        .await
        .expect(204);
    // A group is not a role: the kind is part of the address.
    http.get("/api/v1/roles/staff", root).await.expect(404);

    // Paging: ten groups, three at a time.
    for i in 0..9 {
        http.send(
            "POST",
            "/api/v1/groups",
            root,
            &json!({"cn": format!("g{i}")}),
        )
        .await
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = http
            .get(&format!("/api/v1/groups?limit=3&cursor={cursor}"), root)
            .await;
        page.expect(200);
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|e| e["dn"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
    let filtered = http.get("/api/v1/groups?filter=(cn=g1)", root).await;
    filtered.expect(200);
    assert_eq!(filtered.json()["items"].as_array().unwrap().len(), 1);
    http.delete("/api/v1/groups/staff", root).await.expect(204);
    http.get("/api/v1/groups/staff", root).await.expect(404);
    server.stop().await;
}

#[tokio::test]
async fn search_as_shows_what_an_identity_would_see() {
    let server = TestServer::start().await;
    let http = server.http();
    let root = api_admin(&server).await;
    let root = Auth::Bearer(&root);
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    grant(&mut admin, "directory-readers", &service_dn("nas01")).await;
    let seen = http
        .send(
            "POST",
            "/api/v1/search",
            root,
            &json!({"as": "nas01", "filter": "(objectClass=*)", "attributes": ["uid"]}),
        )
        .await;
    seen.expect(200);
    let dns: Vec<String> = seen.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dn"].as_str().unwrap().to_string())
        .collect();
    assert!(dns.contains(&person_dn("alice")), "{dns:?}");
    // Its own entry, and people; no other service account, no role.
    let others: Vec<&String> = dns
        .iter()
        .filter(|d| {
            (d.contains("ou=services") && **d != service_dn("nas01")) || d.contains("ou=roles")
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let alice = seen.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["dn"] == person_dn("alice"))
        .cloned()
        .unwrap();
    assert_eq!(alice["attributes"], json!({"uid": ["alice"]}));
    // Acting as another takes the impersonate right over it.
    let refused = http
        .send(
            "POST",
            "/api/v1/search",
            Auth::Basic("alice", "pw"),
            &json!({"as": "nas01"}),
        )
        .await;
    refused.expect(403);
    assert_eq!(refused.json()["code"], "authorization_denied");
    let own = http
        .send(
            "POST",
            "/api/v1/search",
            Auth::Basic("alice", "pw"),
            &json!({"base": SUFFIX, "scope": "sub"}),
        )
        .await;
    own.expect(200);
    let own: Vec<String> = own.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(own, vec![SUFFIX.to_string(), person_dn("alice")]);
    server.stop().await;
}

/// Method, path, content type, body, and the status it must get.
type BadRequest = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
);

#[tokio::test]
async fn bad_input_is_answered_with_a_problem_never_a_5xx() {
    let server = TestServer::start().await;
    let http = server.http();
    let token = api_admin(&server).await;
    let root = Auth::Bearer(&token);
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    let json_body = |s: &str| s.as_bytes().to_vec();
    let cases: Vec<BadRequest> = vec![
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body("{"),
            400,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body("[1,2]"),
            422,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body(r#"{"uid": 5}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body(r#"{"uid": "x", "bogus": 1}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/people",
            None,
            json_body(r#"{"uid": "x"}"#),
            415,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("text/plain"),
            json_body(r#"{"uid": "x"}"#),
            415,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            vec![b' '; 2 * 1024 * 1024],
            413,
        ),
        ("GET", "/api/v1/people?limit=abc", None, Vec::new(), 400),
        ("GET", "/api/v1/people?limit=-1", None, Vec::new(), 400),
        ("GET", "/api/v1/people?limit=0", None, Vec::new(), 400),
        ("GET", "/api/v1/audit?limit=1001", None, Vec::new(), 400),
        ("GET", "/api/v1/people?filter=(((", None, Vec::new(), 400),
        ("GET", "/api/v1/people?cursor=zzz", None, Vec::new(), 400),
        ("GET", "/api/v1/people?unknown=1", None, Vec::new(), 400),
        ("GET", "/api/v1/audit?kind=nope", None, Vec::new(), 400),
        (
            "GET",
            "/api/v1/audit?since=yesterday",
            None,
            Vec::new(),
            400,
        ),
        ("GET", "/api/v1/nowhere", None, Vec::new(), 404),
        ("GET", "/api/v1/people/nobody", None, Vec::new(), 404),
        ("GET", "/api/v1/people/%ff%fe", None, Vec::new(), 400),
        ("GET", "/api/v1/people/a,b=c", None, Vec::new(), 404),
        ("DELETE", "/api/v1/whoami", None, Vec::new(), 405),
        (
            "PATCH",
            "/api/v1/people/alice",
            Some("application/json"),
            json_body(
                r#"{"changes": [{"op": "replace", "attribute": "nosuch", "values": ["x"]}]}"#,
            ),
            422,
        ),
        (
            "PATCH",
            "/api/v1/people/alice",
            Some("application/json"),
            json_body(r#"{"changes": [{"op": "frob", "attribute": "mail"}]}"#),
            422,
        ),
        (
            "PATCH",
            "/api/v1/people/alice",
            Some("application/json"),
            json_body(r#"{"changes": []}"#),
            400,
        ),
        (
            "PATCH",
            "/api/v1/people/alice",
            Some("application/json"),
            json_body(
                r#"{"changes": [{"op": "replace", "attribute": "entryUUID", "values": ["x"]}]}"#,
            ),
            422,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body(r#"{"uid": "alice"}"#),
            409,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body(r#"{"uid": "x", "attributes": {"nosuch": ["1"]}}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/people",
            Some("application/json"),
            json_body(r#"{"uid": "x", "uid_number": 99999999999}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/search",
            Some("application/json"),
            json_body(r#"{"scope": "wide"}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/search",
            Some("application/json"),
            json_body(r#"{"base": "not a dn"}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/service-accounts",
            Some("application/json"),
            json_body(r#"{"name": "Bad Name!", "display_name": "x", "managed_by": "alice"}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/service-accounts/automation/tokens",
            Some("application/json"),
            json_body(r#"{"label": "x", "expires": "whenever"}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/service-accounts/automation/tokens",
            Some("application/json"),
            json_body(r#"{"label": "x", "scope": "everything"}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/service-accounts/automation/tokens/nosuch/rotate",
            Some("application/json"),
            json_body(r#"{"overlap": "soon"}"#),
            400,
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let r = http.raw(method, path, root, ct, body).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            "application/problem+json",
            "{method} {path}"
        );
        let problem = r.json();
        assert_eq!(problem["status"], want);
        assert!(problem["code"].is_string() && problem["detail"].is_string());
    }
    // The server is still there, and nothing was half-made.
    http.get("/api/v1/people/x", root).await.expect(404);
    server.stop().await;
}

#[tokio::test]
async fn the_audit_trail_is_kept_in_the_store_and_filtered() {
    let server = TestServer::start().await;
    let http = server.http();
    let token = api_admin(&server).await;
    let root = Auth::Bearer(&token);
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;
    add_person(&mut admin, "bob", "pw", false).await;
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "pw").await, 0);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "pw").await, 0);
    assert_eq!(ldap_bind(&server, &person_dn("alice"), "wrong").await, 49);
    http.send("POST", "/api/v1/groups", root, &json!({"cn": "staff"}))
        .await
        .expect(201);
    http.send(
        "PATCH",
        "/api/v1/groups/staff/members",
        root,
        &json!({"add": ["alice"]}),
    )
    .await
    .expect(200);
    http.send(
        "PUT",
        "/api/v1/people/bob/password",
        root,
        &json!({"password": "new"}),
    )
    .await
    .expect(204);

    let items = |r: &Reply| r.json()["items"].as_array().unwrap().clone();
    let binds = http
        .get("/api/v1/audit?kind=bind&account=alice", root)
        .await;
    binds.expect(200);
    let binds = items(&binds);
    let success = binds
        .iter()
        .find(|e| e["outcome"] == "success")
        .unwrap_or_else(|| panic!("{binds:#?}"));
    assert_eq!(success["count"], 2, "repeats counted in one record");
    assert_eq!(success["actor"], person_dn("alice"));
    assert_eq!(success["peer"], "127.0.0.1");
    assert_eq!(success["transport"], "ldaps");
    let failure = binds.iter().find(|e| e["outcome"] == "failure").unwrap();
    assert_eq!(failure["reason"], "wrong password");
    assert_eq!(failure["code"], 49);

    let members = http
        .get(
            "/api/v1/audit?kind=membership-changed&account=cn=staff,ou=groups,dc=example,dc=com",
            root,
        )
        .await;
    let members = items(&members);
    assert_eq!(members.len(), 1, "{members:#?}");
    assert_eq!(members[0]["target"], "cn=staff,ou=groups,dc=example,dc=com");
    assert_eq!(members[0]["actor"], service_dn("automation"));
    assert_eq!(members[0]["transport"], "https");
    assert!(members[0]["detail"].as_str().unwrap().contains("uid=alice"));
    let passwords = http
        .get("/api/v1/audit?kind=password-changed,token-generated", root)
        .await;
    let passwords = items(&passwords);
    assert!(
        passwords
            .iter()
            .any(|e| e["kind"] == "password-changed" && e["target"] == person_dn("bob"))
    );
    assert!(
        passwords
            .iter()
            .any(|e| e["kind"] == "token-generated" && e["target"] == service_dn("automation"))
    );
    // A valid token sent without TLS: refused (13), stamped exposed, and recorded with its
    // id and account, never the secret.
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    let ldap_token = generate(&mut admin, &service_dn("nas01"), "nas", None, None, None)
        .await
        .unwrap()
        .token;
    let mut plain = server.plain().await;
    let rc = plain.simple_bind("dn=token", &ldap_token).await.unwrap().rc;
    assert_eq!(rc, 13);
    let exposed = http.get("/api/v1/audit?kind=token-exposed", root).await;
    let exposed = items(&exposed);
    assert_eq!(exposed.len(), 1, "{exposed:#?}");
    assert_eq!(exposed[0]["target"], service_dn("nas01"));
    assert_eq!(exposed[0]["transport"], "ldap");
    assert!(!exposed[0]["token_id"].as_str().unwrap().is_empty());
    // Newest first, in pages.
    let first = http.get("/api/v1/audit?limit=1", root).await;
    let next = first.json()["next"].as_str().unwrap().to_string();
    let second = http
        .get(&format!("/api/v1/audit?limit=1&cursor={next}"), root)
        .await;
    assert!(items(&first)[0]["time"].as_str() >= items(&second)[0]["time"].as_str());
    let later = http
        .get("/api/v1/audit?since=2999-01-01T00:00:00Z", root)
        .await;
    assert!(items(&later).is_empty());
    // Others see the records that name them.
    let own = http.get("/api/v1/audit", Auth::Basic("bob", "new")).await;
    own.expect(200);
    let own = items(&own);
    assert!(!own.is_empty());
    for e in &own {
        assert!(
            e["actor"] == person_dn("bob") || e["target"] == person_dn("bob"),
            "{e}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_remaining_endpoints_answer_as_documented() {
    let server = TestServer::start().await;
    let http = server.http();
    let token = api_admin(&server).await;
    let root = Auth::Bearer(&token);
    let mut admin = server.admin().await;
    add_person(&mut admin, "alice", "pw", false).await;

    // A group's own attributes.
    http.send("POST", "/api/v1/groups", root, &json!({"cn": "staff"}))
        .await
        .expect(201);
    let changed = http
        .send(
            "PATCH",
            "/api/v1/groups/staff",
            root,
            &json!({"changes": [{"op": "add", "attribute": "description", "values": ["everyone"]}]}),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.json()["attributes"]["description"][0], "everyone");
    let staff = http.get("/api/v1/groups/staff", root).await;
    staff.expect(200);
    assert_eq!(staff.json()["dn"], "cn=staff,ou=groups,dc=example,dc=com");

    // Roles: the built-in ones are listed; a role's definition changes by administrators.
    let roles = http.get("/api/v1/roles", root).await;
    roles.expect(200);
    let names: Vec<String> = roles.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["cn"][0].as_str().unwrap().to_string())
        .collect();
    for builtin in [
        "directory-admins",
        "people-admins",
        "service-account-admins",
        "directory-readers",
        "directory-sync",
    ] {
        assert!(names.iter().any(|n| n == builtin), "{builtin} in {names:?}");
    }
    let redefined = http
        .send(
            "PATCH",
            "/api/v1/roles/directory-sync",
            root,
            &json!({"changes": [{"op": "replace", "attribute": "roleRight", "values": ["read"]}]}),
        )
        .await;
    redefined.expect(200);
    assert_eq!(redefined.json()["attributes"]["roleRight"], json!(["read"]));
    // Not by a holder of a role that reaches it: role definitions are administrators'.
    add_person(&mut admin, "pam", "pw-pam", false).await;
    grant(&mut admin, "people-admins", &person_dn("pam")).await;
    let refused = http
        .send(
            "PATCH",
            "/api/v1/roles/people-admins",
            Auth::Basic("pam", "pw-pam"),
            &json!({"changes": [{"op": "add", "attribute": "roleRight", "values": ["all"]}]}),
        )
        .await;
    assert!(matches!(refused.status, 403 | 404), "{}", refused.text());

    // An app password rotated: the new one binds, the old one for the overlap.
    let alice = Auth::Basic("alice", "pw");
    let first = http
        .send(
            "POST",
            "/api/v1/people/alice/app-passwords",
            alice,
            &json!({"label": "laptop"}),
        )
        .await;
    first.expect(201);
    let first = first.json();
    let rotated = http
        .send(
            "POST",
            &format!(
                "/api/v1/people/alice/app-passwords/{}/rotate",
                first["id"].as_str().unwrap()
            ),
            alice,
            &json!({"overlap": "1h"}),
        )
        .await;
    rotated.expect(201);
    assert_eq!(rotated.header("cache-control"), "no-store");
    let rotated = rotated.json();
    assert_ne!(rotated["id"], first["id"]);
    let new_secret = rotated["token"].as_str().unwrap();
    assert_eq!(ldap_bind(&server, &person_dn("alice"), new_secret).await, 0);
    let old_secret = first["token"].as_str().unwrap();
    assert_eq!(ldap_bind(&server, &person_dn("alice"), old_secret).await, 0);
    server
        .running()
        .state
        .clock
        .advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(
        ldap_bind(&server, &person_dn("alice"), old_secret).await,
        49
    );
    let listed = http.get("/api/v1/people/alice/app-passwords", alice).await;
    let states: Vec<String> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_string())
        .collect();
    assert!(states.contains(&"expired".to_string()) && states.contains(&"ok".to_string()));
    server.stop().await;
}
