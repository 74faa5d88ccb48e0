//! Search (RFC 4511 §4.5) with paged results (RFC 2696), size and time limits.
//!
//! Candidates come from the equality indexes when the filter allows, otherwise from the
//! scope; each candidate is decoded, given the computed attributes the filter or the
//! attribute list needs, evaluated, projected and streamed to the connection from the
//! store's blocking thread. Paged cookies are printable, MAC'd, bound to the connection,
//! the request and the identity, and good for one use.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::filter::{Filter, FilterLimits, Truth, resolve};
use crate::directory::schema::Schema;
use crate::dit::DitError;
use crate::dit::caller::{self, Caller, Policy, Principal};
use crate::dit::search;
use crate::ldap::result::success;
use crate::ldap::root_dse;
use crate::ldap::session::{PagedCookies, Remaining, Transport};
use crate::ldap::{OpContext, Outgoing, ber, reply};
use crate::store::{DirectoryRead, Reader, StoreError};

pub async fn search(ctx: &OpContext, req: &LdapSearchRequest) {
    let request = LdapOp::SearchRequest(req.clone());
    match run(ctx, req).await {
        Ok(Some((res, ctrl))) => reply(ctx, &request, Ok(res), ctrl).await,
        // Abandoned: RFC 4511 §4.11, no response.
        Ok(None) => {}
        Err((err, ctrl)) => {
            if !ctx.cancel.is_cancelled() {
                reply(ctx, &request, Err(err), ctrl).await;
            }
        }
    }
}

type Outcome = Result<
    Option<(ldap3_proto::proto::LdapResult, Vec<LdapControl>)>,
    (DitError, Vec<LdapControl>),
>;

async fn run(ctx: &OpContext, req: &LdapSearchRequest) -> Outcome {
    let state = &ctx.state;
    let paged = ctx.controls.iter().find_map(|c| match c {
        LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
        _ => None,
    });
    let no_ctrl = |e: DitError| (e, Vec::new());
    let base = Dn::parse(&req.base).map_err(|e| no_ctrl(e.into()))?;
    let limits = FilterLimits {
        max_depth: state.config.limits.max_filter_depth,
        max_elements: state.config.limits.max_filter_elements,
    };
    let filter =
        Filter::from_ldap(&req.filter, &state.schema, limits).map_err(|e| no_ctrl(e.into()))?;
    let selection = Selection::parse(&req.attrs, &state.schema, req.typesonly);

    // The rootDSE and the subschema entry live outside the tree.
    let special = if base.is_root() {
        Some(root_dse::root_dse(state, &ctx.session))
    } else if base.norm() == "cn=subschema" {
        Some(root_dse::subschema(state))
    } else {
        None
    };
    // A cluster member cut off from its cluster answers only the rootDSE (which says so)
    // and the subschema, but to the local administrator on LDAPI.
    if special.is_none()
        && !matches!(ctx.session.transport, Transport::Ldapi { .. })
        && let Some(refusal) = state.cut_off()
    {
        return Err(no_ctrl(refusal));
    }
    if let Some(entry) = special {
        return special_search(ctx, req, &filter, &selection, entry, paged.is_some()).await;
    }

    let mut page = None;
    let mut resume = None;
    // Held until the first page's cookie is issued: see `PagedCookies`.
    let mut _new_paged = None;
    if let Some((size, cookie)) = &paged {
        let fp = fingerprint(req, ctx);
        let (after, kept) = if cookie.is_empty() {
            _new_paged = Some(PagedCookies::begin(&ctx.session.paged).ok_or_else(|| {
                no_ctrl(DitError::unwilling(
                    "too many paged searches open on this connection",
                ))
            })?);
            (0, None)
        } else {
            match check_cookie(ctx, cookie, fp) {
                Some(found) => found,
                None => {
                    return Err((
                        DitError::protocol("paged results cookie is invalid"),
                        Vec::new(),
                    ));
                }
            }
        };
        if *size <= 0 && !cookie.is_empty() {
            // RFC 2696 §3: a zero size with a cookie abandons the paged search.
            return Ok(Some((success(), vec![paged_control(Vec::new())])));
        }
        page = Some(Page {
            size: usize::try_from(*size).unwrap_or(0),
            after,
            fingerprint: fp,
        });
        resume = kept;
    }

    let scan = Scan {
        principal: ctx.session.principal.clone(),
        policy: state.policy(),
        suffix: state.config.suffix.clone(),
        server_size: state.config.limits.size_limit,
        server_time: state.config.limits.time_limit,
        client_size: usize::try_from(req.sizelimit).unwrap_or(0),
        client_time: u64::try_from(req.timelimit).unwrap_or(0),
        msgid: ctx.msgid,
        cancel: ctx.cancel.clone(),
        started: Instant::now(),
        schema: state.schema.clone(),
        page: page.clone(),
        resume,
        planned: None,
        query: search::Query {
            base,
            scope: req.scope.clone(),
            filter,
        },
        selection,
    };

    // Most searches (getpwnam, initgroups) meet a handful of entries through an index:
    // those run here, without a hop to the blocking pool, and their results are sent
    // after the read. Anything larger streams from a blocking thread.
    let mut found = Vec::new();
    let mut returned = 0;
    let inline = state.store.read_inline(|r| {
        let mut keep = |bytes| {
            found = bytes;
            true
        };
        let mut results = Results::new(usize::MAX, &mut keep);
        let end = scan.run(r, Some(INLINE_CANDIDATES), &mut results);
        results.flush();
        returned = results.entries;
        end
    });
    let scan = match inline {
        Err(ScanError::TooMany(planned)) => {
            // The plan just made serves the blocking run too, unless a write came between.
            let mut scan = scan;
            scan.planned = planned;
            let out = ctx.out.clone();
            let (end, streamed) = state
                .store
                .read(move |r| {
                    let mut send = |bytes| out.blocking_send(Outgoing::Encoded(bytes)).is_ok();
                    let mut results = Results::new(STREAM_BATCH_BYTES, &mut send);
                    let end = scan.run(r, None, &mut results);
                    // Entries sent before a size or time limit come before its result.
                    results.flush();
                    Ok::<_, StoreError>((end, results.entries))
                })
                .await
                .unwrap_or_else(|e| (Err(ScanError::Store(e)), 0));
            returned = streamed;
            end
        }
        other => {
            if !found.is_empty() && ctx.out.send(Outgoing::Encoded(found)).await.is_err() {
                return Ok(None);
            }
            other
        }
    };

    state.metrics.entries_returned(returned);
    let page_ctrl = |cookie: Vec<u8>| {
        if paged.is_some() {
            vec![paged_control(cookie)]
        } else {
            Vec::new()
        }
    };
    match scan {
        Ok(ScanEnd::Abandoned) => Ok(None),
        Ok(ScanEnd::Done) => Ok(Some((success(), page_ctrl(Vec::new())))),
        Ok(ScanEnd::More {
            last,
            rest,
            generation,
        }) => {
            let Some(p) = &page else {
                return Ok(Some((success(), Vec::new())));
            };
            let cookie = make_cookie(ctx, last, p.fingerprint);
            let remaining = Remaining::keep(&state.paged_ids, rest, generation);
            if let Ok(mut issued) = ctx.session.paged.lock() {
                issued.issue(cookie.clone(), remaining);
            }
            Ok(Some((success(), page_ctrl(cookie))))
        }
        Err(ScanError::Ldap(e)) => Err((e, page_ctrl(Vec::new()))),
        Err(ScanError::Store(e)) => Err((e.into(), page_ctrl(Vec::new()))),
        Err(ScanError::TooMany(_)) => Err((
            DitError::new(LdapResultCode::Other, "search could not be planned"),
            page_ctrl(Vec::new()),
        )),
    }
}

enum ScanEnd {
    Done,
    /// A page is full: the last id sent, and the candidates after it, as planned at
    /// `generation`.
    More {
        last: u64,
        rest: Vec<u64>,
        generation: u64,
    },
    Abandoned,
}

enum ScanError {
    Ldap(DitError),
    Store(StoreError),
    /// More candidates than the inline budget: run on the blocking pool instead. Carries
    /// the candidates when they were planned for this refusal, with the generation.
    TooMany(Option<(u64, Vec<u64>)>),
}

/// Candidates a search may examine on the connection's own thread.
const INLINE_CANDIDATES: usize = 32;

/// Encoded entries a streaming search gathers before handing them to the connection.
const STREAM_BATCH_BYTES: usize = 32 * 1024;

/// Where a scan puts its encoded entries: one buffer, handed on (`send`) whenever it holds
/// `flush_at` bytes. A channel message, and a wake-up of the connection's writer, per entry
/// cost more than encoding the entry did.
struct Results<'a> {
    buf: Vec<u8>,
    /// Entries added so far.
    entries: usize,
    flush_at: usize,
    send: &'a mut dyn FnMut(Vec<u8>) -> bool,
}

impl<'a> Results<'a> {
    fn new(flush_at: usize, send: &'a mut dyn FnMut(Vec<u8>) -> bool) -> Results<'a> {
        Results {
            buf: Vec::new(),
            entries: 0,
            flush_at,
            send,
        }
    }

    /// After each entry; false when the client is gone.
    fn entry_added(&mut self) -> bool {
        self.entries += 1;
        self.buf.len() < self.flush_at || self.flush()
    }

    fn flush(&mut self) -> bool {
        self.buf.is_empty() || (self.send)(std::mem::take(&mut self.buf))
    }
}

/// Everything a search's scan needs, owned, so it can move to a blocking thread.
struct Scan {
    principal: Principal,
    policy: Policy,
    suffix: Dn,
    server_size: usize,
    server_time: Duration,
    client_size: usize,
    client_time: u64,
    msgid: i32,
    cancel: CancellationToken,
    started: Instant,
    schema: Arc<Schema>,
    page: Option<Page>,
    /// The previous page's candidates, when kept with its cookie.
    resume: Option<Remaining>,
    /// Candidates planned by an inline attempt that had too many, at a generation.
    planned: Option<(u64, Vec<u64>)>,
    query: search::Query,
    selection: Selection,
}

impl Scan {
    /// Evaluate the candidates and add each result entry to `results` (stopping when the
    /// client is gone). With a `budget`, refuse ([`ScanError::TooMany`]) before reading any
    /// entry if there are more candidates than that.
    fn run(
        &self,
        r: &Reader,
        budget: Option<usize>,
        results: &mut Results<'_>,
    ) -> Result<ScanEnd, ScanError> {
        let Scan {
            principal,
            policy,
            suffix,
            server_size,
            server_time,
            client_size,
            client_time,
            msgid,
            cancel,
            started,
            schema,
            page,
            resume,
            planned,
            query,
            selection,
        } = self;
        let caller = caller::caller(r, principal, policy)?;
        // Limits: administrators get only what they ask for.
        let (size_limit, time_limit) = effective_limits(
            &caller,
            *client_size,
            *client_time,
            *server_size,
            *server_time,
        );
        // A paged search may page through more than the server limit, but no page
        // holds more than it (OpenLDAP's size.pr); the client's own limit still holds.
        let page = page.clone().map(|p| Page {
            size: page_size(&caller, p.size, *server_size),
            ..p
        });
        let size_limit = if page.is_some() {
            client_size_only(*client_size)
        } else {
            size_limit
        };
        let deadline = time_limit.map(|t| *started + t);
        let base_id = search::base(r, &caller, suffix, &query.base).map_err(ScanError::Ldap)?;
        // Kept candidates serve while nothing has been written since they were planned.
        let generation = r.generation();
        let ids: Cow<[u64]> = match (resume, planned) {
            (Some(kept), _) if kept.generation == generation => Cow::Borrowed(&kept.ids),
            (_, Some((g, ids))) if *g == generation => Cow::Borrowed(ids),
            _ => Cow::Owned(search::candidates(r, &query.filter, &query.scope, base_id)?),
        };
        if budget.is_some_and(|b| ids.len() > b) {
            let planned = match ids {
                Cow::Owned(ids) => Some((generation, ids)),
                Cow::Borrowed(_) => None,
            };
            return Err(ScanError::TooMany(planned));
        }
        // Only what the result, the filter and the caller's view read is decoded.
        let examiner = search::Examiner::new(query, &caller, selection.stored());
        let mut sent = 0usize;
        let mut last = None;
        let start = page
            .as_ref()
            .map_or(0, |p| ids.partition_point(|&id| id <= p.after));
        for (i, &id) in ids.iter().enumerate().skip(start) {
            if cancel.is_cancelled() {
                return Ok(ScanEnd::Abandoned);
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(ScanError::Ldap(DitError::new(
                    LdapResultCode::TimeLimitExceeded,
                    "time limit exceeded",
                )));
            }
            let wants = |name: &str| selection.wants(name, schema);
            let Some(entry) = examiner.examine(r, &caller, schema, id, &wants)? else {
                continue;
            };
            if let Some(p) = page.as_ref().filter(|p| p.size > 0 && sent == p.size) {
                return Ok(ScanEnd::More {
                    last: last.unwrap_or(p.after),
                    rest: ids[i..].to_vec(),
                    generation,
                });
            }
            if size_limit.is_some_and(|n| sent == n) {
                return Err(ScanError::Ldap(DitError::new(
                    LdapResultCode::SizeLimitExceeded,
                    "size limit exceeded",
                )));
            }
            encode(&mut results.buf, *msgid, &entry, selection, schema);
            if !results.entry_added() {
                return Ok(ScanEnd::Abandoned);
            }
            sent += 1;
            last = Some(id);
        }
        Ok(ScanEnd::Done)
    }
}

impl From<DitError> for ScanError {
    fn from(e: DitError) -> Self {
        ScanError::Ldap(e)
    }
}

impl From<StoreError> for ScanError {
    fn from(e: StoreError) -> Self {
        ScanError::Store(e)
    }
}

#[derive(Clone)]
struct Page {
    size: usize,
    after: u64,
    fingerprint: [u8; 8],
}

fn client_size_only(client: usize) -> Option<usize> {
    (client > 0).then_some(client)
}

/// Entries per page: what the client asked for (0 = no preference), capped at the server
/// limit for everyone but administrators, who get what they ask for (0 = everything).
fn page_size(caller: &Caller, requested: usize, server_size: usize) -> usize {
    if caller.is_admin() {
        return requested;
    }
    match requested {
        0 => server_size,
        n => n.min(server_size),
    }
}

fn effective_limits(
    caller: &Caller,
    client_size: usize,
    client_time: u64,
    server_size: usize,
    server_time: Duration,
) -> (Option<usize>, Option<Duration>) {
    let client_time = (client_time > 0).then(|| Duration::from_secs(client_time));
    if caller.is_admin() {
        return (client_size_only(client_size), client_time);
    }
    let size = match client_size {
        0 => server_size,
        n => n.min(server_size),
    };
    let time = client_time.map_or(server_time, |t| t.min(server_time));
    (Some(size), Some(time))
}

async fn special_search(
    ctx: &OpContext,
    req: &LdapSearchRequest,
    filter: &Filter,
    selection: &Selection,
    entry: Entry,
    paged: bool,
) -> Outcome {
    let ctrl = if paged {
        vec![paged_control(Vec::new())]
    } else {
        Vec::new()
    };
    let anonymous = ctx.state.config.security.anonymous;
    let hidden = ctx.session.principal == Principal::Anonymous
        && anonymous == crate::config::AnonymousAccess::None;
    if hidden {
        return Err((DitError::no_such_object(String::new()), ctrl));
    }
    if req.scope != LdapSearchScope::Base {
        // Neither the rootDSE nor the subschema entry has children.
        if entry.dn.is_root() {
            return Err((DitError::no_such_object(String::new()), ctrl));
        }
        return Ok(Some((success(), ctrl)));
    }
    if filter.matches(&entry) == Truth::True {
        let mut msg = Vec::new();
        encode(&mut msg, ctx.msgid, &entry, selection, &ctx.state.schema);
        if ctx.out.send(Outgoing::Encoded(msg)).await.is_err() {
            return Ok(None);
        }
    }
    Ok(Some((success(), ctrl)))
}

/// Which attributes a search returns (RFC 4511 §4.5.1.8, RFC 3673).
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    named: Vec<String>,
    none: bool,
    types_only: bool,
}

impl Selection {
    pub fn parse(attrs: &[String], schema: &Schema, types_only: bool) -> Selection {
        let mut s = Selection {
            all_user: attrs.is_empty(),
            all_operational: false,
            named: Vec::new(),
            none: false,
            types_only,
        };
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                other => {
                    if let Some(r) = resolve(schema, other) {
                        s.named.push(r.name);
                    }
                }
            }
        }
        s.none = !attrs.is_empty()
            && !s.all_user
            && !s.all_operational
            && s.named.is_empty()
            && attrs.iter().any(|a| a == "1.1");
        s
    }

    /// The stored attributes a result can show, or None when that is any of them.
    pub fn stored(&self) -> Option<Vec<String>> {
        if self.all_user || self.all_operational {
            return None;
        }
        Some(self.named.clone())
    }

    /// Whether the result shows the attribute `name`: what was asked for, by name, `*` or
    /// `+`, and nothing else (RFC 4511 §4.5.1.8; `objectClass` too, as slapd does).
    pub fn wants(&self, name: &str, schema: &Schema) -> bool {
        if self.none {
            return false;
        }
        if self.named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return true;
        }
        let operational = schema.attribute(name).is_some_and(|a| a.is_operational());
        if operational {
            self.all_operational
        } else {
            self.all_user
        }
    }
}

/// The entry as the result shows it (already redacted for the caller), as one encoded
/// SearchResultEntry message appended to `out`.
fn encode(out: &mut Vec<u8>, msgid: i32, entry: &Entry, sel: &Selection, schema: &Schema) {
    let attrs: Vec<(&str, &[Vec<u8>])> = entry
        .attrs
        .iter()
        .filter(|a| sel.wants(&a.name, schema))
        .map(|a| {
            let values: &[Vec<u8>] = if sel.types_only { &[] } else { &a.values };
            (a.name.as_str(), values)
        })
        .collect();
    ber::search_result_entry(out, msgid, entry.dn.as_str(), &attrs);
}

fn paged_control(cookie: Vec<u8>) -> LdapControl {
    LdapControl::SimplePagedResults { size: 0, cookie }
}

fn fingerprint(req: &LdapSearchRequest, ctx: &OpContext) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(req.base.to_ascii_lowercase().as_bytes());
    h.update([req.scope.clone() as u8, u8::from(req.typesonly)]);
    h.update(format!("{:?}", req.filter).as_bytes());
    for a in &req.attrs {
        h.update(a.as_bytes());
        h.update([0]);
    }
    if let Some(dn) = ctx.session.principal.dn() {
        h.update(dn.norm().as_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn mac(ctx: &OpContext, last: u64, fp: [u8; 8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(ctx.state.cookie_key.as_slice());
    h.update(ctx.session.nonce);
    h.update(last.to_be_bytes());
    h.update(fp);
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// `hex(last id | fingerprint | mac)`: printable, so clients that treat it as text survive.
fn make_cookie(ctx: &OpContext, last: u64, fp: [u8; 8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(32);
    raw.extend_from_slice(&last.to_be_bytes());
    raw.extend_from_slice(&fp);
    raw.extend_from_slice(&mac(ctx, last, fp));
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

/// The last id a valid, unused cookie names, and the candidates kept with it.
fn check_cookie(ctx: &OpContext, cookie: &[u8], fp: [u8; 8]) -> Option<(u64, Option<Remaining>)> {
    if cookie.len() != 64 {
        return None;
    }
    let text = std::str::from_utf8(cookie).ok()?;
    let mut raw = [0u8; 32];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    let last = u64::from_be_bytes(raw[..8].try_into().ok()?);
    let expected = mac(ctx, last, fp);
    let fp_ok = raw[8..16].ct_eq(&fp);
    let mac_ok = raw[16..].ct_eq(&expected);
    if !bool::from(fp_ok & mac_ok) {
        return None;
    }
    let kept = ctx.session.paged.lock().ok()?.take(cookie)?;
    Some((last, kept))
}
