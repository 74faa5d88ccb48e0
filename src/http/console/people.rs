//! People: list and search, create, each person's page (their entry, groups, roles, app
//! passwords), resetting a password (by those the rules allow), minting and revoking app
//! passwords; and self-service: "My account" is the signed-in person's own page, where
//! they change their password and keep their app passwords (one per device). Every action
//! is `http::api`'s, as the signed-in identity; refusals are the rules' own.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::directory::dn::Dn;
use crate::dit::credentials::Intent;
use crate::http::Api;
use crate::http::api::directory::{NewPerson, create_person_entry};
use crate::http::api::tokens::{self, MintedJson, NewToken, TokenJson, set_person_password};
use crate::http::api::{EntryJson, PEOPLE, get_kind, read};
use crate::http::console::accounts::{
    Held, ListOf, ListParams, RevokePage, SecretPage, held_roles, list_page,
};
use crate::http::console::session::{Posted, Signed, Standing, standing};
use crate::http::console::sign_in::{confirm, confirm_prompt};
use crate::http::console::{
    Frame, first, link_of, path_segment, render, render_secret, say, short_name, status, values,
};
use crate::http::problem::Problem;

pub async fn list(State(api): State<Api>, signed: Signed, Query(p): Query<ListParams>) -> Response {
    let listed = ListOf {
        kind: PEOPLE,
        section: "people",
        path: "/console/people",
        heading: "People",
        new_label: "New person",
        searched: &["uid", "cn", "mail"],
        placeholder: "id, name or mail",
        columns: vec!["Name", "Mail", "Groups"],
        cells: |e| {
            vec![
                first(e, "cn"),
                first(e, "mail"),
                values(e, "memberOf")
                    .iter()
                    .map(|m| short_name(m))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        },
    };
    list_page(&api, &signed, p, listed).await
}

#[derive(Template)]
#[template(path = "person_new.html", config = "src/http/console/askama.toml")]
struct NewPage {
    frame: Frame,
    uid: String,
    display_name: String,
    mail: String,
}

pub async fn new_form(signed: Signed) -> Response {
    render(
        StatusCode::OK,
        &NewPage {
            frame: Frame::new("New person", "people", Some(&signed)),
            uid: String::new(),
            display_name: String::new(),
            mail: String::new(),
        },
    )
}

pub async fn create(State(api): State<Api>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let uid = form.get("uid").to_string();
    let refuse = |text: String, code: StatusCode| {
        render(
            code,
            &NewPage {
                frame: Frame::new("New person", "people", Some(&signed)).error(text),
                uid: uid.clone(),
                display_name: form.get("display_name").to_string(),
                mail: form.get("mail").to_string(),
            },
        )
    };
    if uid.is_empty() {
        return refuse(
            "A person needs an id (their login name).".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let new = NewPerson {
        uid: uid.clone(),
        display_name: form.opt("display_name"),
        surname: None,
        mail: form.opt("mail"),
        password: Some(form.raw("password").to_string()).filter(|p| !p.is_empty()),
        posix: form.get("posix") == "on",
        uid_number: None,
        gid_number: None,
        home_directory: None,
        login_shell: None,
        attributes: Default::default(),
    };
    match create_person_entry(&api, &signed.who, new).await {
        Ok(_) => Redirect::to(&format!(
            "/console/people/{}?done=created",
            path_segment(&uid)
        ))
        .into_response(),
        Err(p) => refuse(say(&p, "add this person"), status(&p)),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    id: Option<String>,
}

pub async fn detail(
    State(api): State<Api>,
    signed: Signed,
    Path(uid): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let id = done.id.unwrap_or_default();
    let message = match done.done.as_deref() {
        Some("created") => Some(Ok(format!("Added {uid}."))),
        Some("password") => Some(Ok("The password is set.".to_string())),
        Some("revoked") => Some(Ok(format!(
            "Revoked the app password {id}: it fails from its next use."
        ))),
        _ => None,
    };
    detail_page(&api, &signed, &uid, message, StatusCode::OK).await
}

/// The signed-in person's own page; the local administrator has none.
pub async fn me(State(api): State<Api>, signed: Signed) -> Response {
    match signed.person() {
        Some(uid) => {
            let uid = uid.to_string();
            detail_page(&api, &signed, &uid, None, StatusCode::OK).await
        }
        None => crate::http::console::refused_page(
            &api,
            &signed,
            StatusCode::NOT_FOUND,
            "The local administrator has no entry of its own, nor a password to change.",
        ),
    }
}

#[derive(Template)]
#[template(path = "person.html", config = "src/http/console/askama.toml")]
struct DetailPage {
    frame: Frame,
    uid: String,
    own: bool,
    entry: EntryJson,
    groups: Vec<(String, Option<String>)>,
    roles: Vec<Held>,
    tokens: Vec<TokenJson>,
    /// Why the caller may not reset this person's password, when it may not.
    reset_refused: Option<String>,
    /// Why the caller may not make this person an app password, when it may not.
    mint_refused: Option<String>,
    confirm: Option<&'static str>,
}

impl DetailPage {
    fn field(&self, attr: &str) -> String {
        first(&self.entry, attr)
    }

    fn base_path(&self) -> String {
        format!("/console/people/{}/app-passwords", path_segment(&self.uid))
    }

    fn rotatable(&self) -> bool {
        false
    }
}

/// A person's page, with `message` (Ok: done, Err: refused) and `code`.
pub async fn detail_page(
    api: &Api,
    signed: &Signed,
    uid: &str,
    message: Option<Result<String, String>>,
    code: StatusCode,
) -> Response {
    let person = uid.to_string();
    let found = read(api, &signed.who, move |r, caller, policy| {
        let entry = get_kind(r, caller, policy, PEOPLE, &person)?;
        let dn = Dn::parse(&entry.dn)?;
        let roles = held_roles(r, caller, policy, &dn)?;
        // The rule itself says whether the reset form is worth showing.
        let reset = crate::dit::password::require_may_set(r, policy, caller, &dn).err();
        let mint = crate::dit::token::require_manageable(r, policy, caller, &dn).err();
        Ok((entry, roles, reset, mint))
    })
    .await;
    let (entry, roles, reset, mint) = match found {
        Ok(found) => found,
        Err(p) => {
            // A refusal to act is the news; the page it would have been shown on may be out of
            // sight too.
            let (text, code) = match message {
                Some(Err(text)) => (text, code),
                _ => (say(&p, "show this person"), status(&p)),
            };
            let frame = Frame::new("Person", "people", Some(signed)).error(text);
            return render(code, &crate::http::console::Refused { frame });
        }
    };
    let tokens = tokens::list(api, &signed.who, PEOPLE, uid)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let suffix = &api.state.config.suffix;
    let own = signed.person() == Some(uid);
    let mut frame = Frame::new(
        uid.to_string(),
        if own { "me" } else { "people" },
        Some(signed),
    );
    frame = match message {
        Some(Ok(text)) => frame.ok(text),
        Some(Err(text)) => frame.error(text),
        None => frame,
    };
    let page = DetailPage {
        frame,
        uid: uid.to_string(),
        own,
        groups: values(&entry, "memberOf")
            .iter()
            .map(|d| (short_name(d), link_of(suffix, d)))
            .collect(),
        entry,
        roles,
        tokens,
        reset_refused: reset.map(|e| say(&Problem::from(e), "reset this person's password")),
        mint_refused: mint.map(|e| say(&Problem::from(e), "make an app password for this person")),
        confirm: confirm_prompt(api, signed),
    };
    render(code, &page)
}

/// Set a person's password (another's, by those allowed; one's own goes through
/// `change_own_password`): the one given, or a generated one shown once.
pub async fn reset(State(api): State<Api>, Path(uid): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    if let Err(text) = confirm(&api, &signed, &form).await {
        return detail_page(&api, &signed, &uid, Some(Err(text)), StatusCode::FORBIDDEN).await;
    }
    let given = Some(form.raw("password").to_string()).filter(|p| !p.is_empty());
    match set_person_password(&api, &signed.who, &uid, given).await {
        Ok(None) => Redirect::to(&format!(
            "/console/people/{}?done=password",
            path_segment(&uid)
        ))
        .into_response(),
        Ok(Some(generated)) => render_secret(&SecretPage {
            frame: Frame::new("Password set", "people", Some(&signed)),
            what: "password",
            back: format!("/console/people/{}", path_segment(&uid)),
            account: uid,
            minted: MintedJson {
                id: String::new(),
                token: generated,
                expires: None,
                old_expires: None,
            },
            bind_dn: String::new(),
        }),
        Err(p) => {
            let text = say(&p, "reset this person's password");
            detail_page(&api, &signed, &uid, Some(Err(text)), status(&p)).await
        }
    }
}

/// Self-service: the signed-in person changes their own password, giving the current one
/// (checked and throttled as a sign-in is) and the new one twice. Their other sessions end.
pub async fn change_own_password(State(api): State<Api>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let Some(uid) = signed.person().map(str::to_string) else {
        return crate::http::console::refused_page(
            &api,
            &signed,
            StatusCode::FORBIDDEN,
            "The local administrator has no password to change.",
        );
    };
    let new = form.raw("new_password");
    if new.is_empty() || new != form.raw("repeat") {
        let text = "Enter the new password twice, the same both times.";
        return detail_page(
            &api,
            &signed,
            &uid,
            Some(Err(text.into())),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if let Err(text) = confirm(&api, &signed, &form).await {
        return detail_page(&api, &signed, &uid, Some(Err(text)), StatusCode::FORBIDDEN).await;
    }
    match set_person_password(&api, &signed.who, &uid, Some(new.to_string())).await {
        Ok(_) => {
            if let Ok(Standing::Live(mark)) = standing(&api, &signed.session.principal).await {
                api.sessions.remark(&signed.id, mark);
            }
            api.sessions
                .end_all_of(&signed.session.principal, &signed.id);
            let text = "Your password is changed; your other sessions are signed out.";
            detail_page(&api, &signed, &uid, Some(Ok(text.into())), StatusCode::OK).await
        }
        Err(p) => {
            let text = say(&p, "change your password");
            detail_page(&api, &signed, &uid, Some(Err(text)), status(&p)).await
        }
    }
}

pub async fn mint_app_password(
    State(api): State<Api>,
    Path(uid): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { signed, form } = posted;
    if let Err(text) = confirm(&api, &signed, &form).await {
        return detail_page(&api, &signed, &uid, Some(Err(text)), StatusCode::FORBIDDEN).await;
    }
    let new = NewToken {
        label: form.get("label").to_string(),
        scope: None,
        expires: form.opt("expires"),
        intent: None,
        extend_on_use: None,
    };
    match tokens::mint(&api, &signed.who, PEOPLE, &uid, new, Intent::AppPassword).await {
        Ok(minted) => render_secret(&SecretPage {
            frame: Frame::new("App password generated", "people", Some(&signed)),
            what: "app password",
            back: format!("/console/people/{}", path_segment(&uid)),
            bind_dn: PEOPLE.dn(&api.state.config.suffix, &uid).to_string(),
            account: uid,
            minted,
        }),
        Err(p) => {
            let text = say(&p, "make an app password for this person");
            detail_page(&api, &signed, &uid, Some(Err(text)), status(&p)).await
        }
    }
}

pub async fn revoke_form(
    State(api): State<Api>,
    signed: Signed,
    Path((uid, id)): Path<(String, String)>,
) -> Response {
    let label = tokens::list(&api, &signed.who, PEOPLE, &uid)
        .await
        .ok()
        .and_then(|l| l.items.into_iter().find(|t| t.id == id))
        .map(|t| t.label);
    let Some(label) = label else {
        let text = format!("No app password {id} of {uid} that you may see.");
        return detail_page(&api, &signed, &uid, Some(Err(text)), StatusCode::NOT_FOUND).await;
    };
    let base = format!("/console/people/{}", path_segment(&uid));
    render(
        StatusCode::OK,
        &RevokePage {
            frame: Frame::new("Revoke an app password", "people", Some(&signed)),
            what: "app password",
            action: format!("{base}/app-passwords/{}/revoke", path_segment(&id)),
            back: base,
            csrf: signed.session.csrf.clone(),
            id,
            label,
            account: uid,
        },
    )
}

pub async fn revoke(
    State(api): State<Api>,
    Path((uid, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let signed = posted.signed;
    match tokens::revoke(&api, &signed.who, PEOPLE, &uid, &id).await {
        Ok(()) => Redirect::to(&format!(
            "/console/people/{}?done=revoked&id={}",
            path_segment(&uid),
            path_segment(&id)
        ))
        .into_response(),
        Err(p) => {
            let text = say(&p, "revoke this app password");
            detail_page(&api, &signed, &uid, Some(Err(text)), status(&p)).await
        }
    }
}
