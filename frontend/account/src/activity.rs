//! The activity log: the user's own security events, or (admins) the
//! company's; filtered by kind, newest first, older pages on demand.

use leptos::prelude::*;
use shared::{ActivityEvent, ActivityPage};

use super::{api, when, Problem, Session};

/// The filter's choices: every category of `shared::audit_kind`, in words.
const CATEGORIES: &[(&str, &str)] = &[
    ("", "All events"),
    ("account", "Sign-ins and sign-outs"),
    ("factor", "Second factors"),
    ("passkey", "Passkeys added from approval links"),
    ("device", "Trusted browsers"),
    ("session", "Approvals"),
    ("password", "Passwords on approval links"),
    ("replay", "Refused replays of approvals"),
    ("webauthn", "Refused passkey answers"),
    ("company", "Company policy"),
    ("limit", "Limits reached"),
];

/// What the log shows: whose events, and of what kind.
#[derive(Clone, PartialEq)]
struct Filter {
    scope: String,
    category: String,
}

impl Filter {
    /// The page of events older than `before` (the newest without).
    fn url(&self, before: Option<i64>) -> String {
        let mut url = format!("/api/account/activity?scope={}&limit=50", self.scope);
        if !self.category.is_empty() {
            url.push_str(&format!("&category={}", self.category));
        }
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        url
    }
}

/// The events listed, the next page's cursor, and what went wrong last.
#[derive(Clone, Default)]
struct Log {
    events: Vec<ActivityEvent>,
    next: Option<i64>,
    error: Option<String>,
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let filter = RwSignal::new(Filter { scope: "mine".to_owned(), category: String::new() });
    // The newest events, read again whenever the filter changes; the
    // answer says which filter it is for.
    let newest = LocalResource::new(move || {
        let asked = filter.get();
        async move {
            let page = api::get::<ActivityPage>(&asked.url(None)).await;
            (asked, page)
        }
    });
    // "Older events": the next page, after those listed.
    let older = Action::new_local(move |before: &i64| {
        let url = filter.with_untracked(|f| f.url(Some(*before)));
        async move { api::get::<ActivityPage>(&url).await }
    });
    // The list stays as it is while the next answer comes.
    let log = RwSignal::new(Log::default());
    Effect::new(move |_| match newest.get() {
        Some((_, Ok(page))) => log.set(Log { events: page.events, next: page.next_before, error: None }),
        Some((_, Err(f))) => log.update(|log| log.error = Some(f.message)),
        None => {}
    });
    Effect::new(move |_| match older.value().get() {
        Some(Ok(page)) => log.update(|log| {
            log.events.extend(page.events);
            log.next = page.next_before;
            log.error = None;
        }),
        Some(Err(f)) => log.update(|log| log.error = Some(f.message)),
        None => {}
    });
    let loading = move || older.pending().get() || newest.with(|answer| answer.as_ref().map(|(asked, _)| asked) != Some(&filter.get()));
    view! {
        <section class="card">
            <h1>"Activity"</h1>
            <div class="filters">
                <Show when=move || session.is_admin()>
                    <label for="scope">"Whose"</label>
                    <select id="scope" on:change=move |ev| filter.update(|f| f.scope = event_target_value(&ev))>
                        <option value="mine">"Mine"</option>
                        <option value="company">"The whole company"</option>
                    </select>
                </Show>
                <label for="category">"Show"</label>
                <select id="category" on:change=move |ev| filter.update(|f| f.category = event_target_value(&ev))>
                    {CATEGORIES.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
                </select>
            </div>
            {move || log.with(|log| log.error.clone()).map(|text| view! { <Problem text=text /> })}
            <ol class="events" aria-busy=move || loading().to_string()>
                {move || log.with(|log| log.events.clone()).into_iter().map(|e| view! {
                    <li>
                        <strong>{describe(&e.kind, &e.detail)}</strong>
                        <span class="muted">{format!(" · {}", when(&e.at))}{e.client_ip.map(|ip| format!(" · {ip}"))}</span>
                        {filter.with_untracked(|f| f.scope == "company").then(|| e.user_id.map(|u| view! { <span class="muted">{format!(" · user {u}")}</span> }))}
                    </li>
                }).collect_view()}
            </ol>
            <Show when=move || !loading() && log.with(|log| log.events.is_empty())>
                <p class="muted">"Nothing here yet."</p>
            </Show>
            <Show when=move || log.with(|log| log.next.is_some())>
                <button type="button" class="outline" on:click=move |_| {
                    if let Some(before) = log.with_untracked(|log| log.next) {
                        older.dispatch_local(before);
                    }
                }>"Older events"</button>
            </Show>
        </section>
    }
}

/// An event in words: its kind, and from its detail the factor it names
/// and whether an admin acted.
fn describe(kind: &str, detail: &serde_json::Value) -> String {
    use shared::audit_kind as k;
    let text = |key: &str| detail.get(key).and_then(serde_json::Value::as_str);
    let factor = || match (text("factor"), text("name")) {
        (Some("totp"), _) => "authenticator app".to_owned(),
        (Some("passkey"), Some(name)) => format!("passkey \u{201c}{name}\u{201d}"),
        (Some("passkey"), None) => "passkey".to_owned(),
        (Some("recovery_code"), _) => "recovery code".to_owned(),
        (Some("sms"), _) => "code by SMS".to_owned(),
        (Some("paired_phone"), _) => "paired phone".to_owned(),
        (Some("password"), _) => "password".to_owned(),
        _ => "second factor".to_owned(),
    };
    let flag = |key: &str| detail.get(key).and_then(serde_json::Value::as_bool) == Some(true);
    let by_admin = if flag("by_admin") { " by an admin" } else { "" };
    // What the paired phone confirmed (or refused) for the account area:
    // its events name the purpose.
    let on_phone = text("factor") == Some("paired_phone");
    let asked_of_phone = on_phone && text("purpose").is_some();
    let phone_purpose = || match text("purpose") {
        Some("sign_in") => "a sign-in",
        Some("replace_phone") => "pairing a new phone in its place",
        _ => "a request",
    };
    match kind {
        k::SIGNED_IN => "Signed in".into(),
        k::PASSWORD_STEP if text("stage") == Some("enrol") => "Password accepted, second factor set-up asked".into(),
        k::PASSWORD_STEP => "Password accepted, second step asked".into(),
        k::SIGN_IN_REFUSED => "Sign-in refused (wrong password)".into(),
        k::SIGNED_OUT => "Signed out".into(),
        k::SIGNED_OUT_EVERYWHERE => "Signed out everywhere".into(),
        k::STEPPED_UP => "Confirmed it was you, to add a sign-in method".into(),
        k::STEP_UP_CODE_SENT => "Confirmation code sent by SMS".into(),
        k::FACTOR_ADDED => format!("Added: {}", factor()),
        k::FACTOR_USED if asked_of_phone => format!("Paired phone allowed {}", phone_purpose()),
        k::FACTOR_USED => format!("Used: {}", factor()),
        k::FACTOR_REFUSED if asked_of_phone && flag("denied") => format!("Paired phone refused {}", phone_purpose()),
        k::FACTOR_REFUSED if asked_of_phone => format!("Paired phone's passkey answer refused ({})", phone_purpose()),
        k::FACTOR_REFUSED => format!("Wrong code ({})", factor()),
        k::FACTOR_REMOVED if on_phone && flag("replaced") => "Paired phone replaced by a new one (the old one no longer works)".into(),
        k::FACTOR_REMOVED => format!("Removed{by_admin}: {}", factor()),
        k::FACTOR_REPLACED => format!("Replaced: {} (the old one no longer works)", factor()),
        k::RECOVERY_CODES_RENEWED => "New recovery codes made (the old ones no longer work)".into(),
        k::DEVICE_TRUSTED => "Browser trusted for 90 days".into(),
        k::DEVICE_REVOKED => "Browser no longer trusted".into(),
        k::PASSKEY_ENROLLED => "Passkey added from an approval link".into(),
        k::SESSION_CREATED => "Approval requested".into(),
        k::SESSION_DECIDED => "Approval decided".into(),
        k::SESSION_REPORTED => "Approval reported: \u{201c}this wasn't me\u{201d}".into(),
        k::REPLAY_REFUSED => "Approval replay refused".into(),
        k::WEBAUTHN_FAILED => "Passkey answer refused".into(),
        k::PASSWORD_REFUSED => "Wrong password on an approval link".into(),
        k::PASSWORD_ACCEPTED => "Password accepted on an approval link".into(),
        k::POLICY_CHANGED => "Two-factor policy changed".into(),
        k::LIMIT_REACHED if text("limit") == Some("user_failures") => "Too many wrong codes or passwords: blocked for a while".into(),
        k::LIMIT_REACHED => "Limit reached".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_is_put_in_words_and_every_category_offered() {
        for kind in shared::audit_kind::ALL {
            assert_ne!(describe(kind, &json!({})), *kind, "{kind} has no words");
        }
        for category in shared::audit_kind::CATEGORIES {
            assert!(CATEGORIES.iter().any(|(value, _)| value == category), "{category} is not offered");
        }
        assert_eq!(CATEGORIES.len(), shared::audit_kind::CATEGORIES.len() + 1, "All, then each category once");
    }

    #[test]
    fn a_removal_names_the_factor_and_an_admin() {
        let detail = json!({"factor": "passkey", "name": "Work phone", "by_admin": true});
        assert_eq!(describe(shared::audit_kind::FACTOR_REMOVED, &detail), "Removed by an admin: passkey \u{201c}Work phone\u{201d}");
        assert_eq!(
            describe(shared::audit_kind::FACTOR_REMOVED, &json!({"factor": "totp", "by_admin": false})),
            "Removed: authenticator app"
        );
        assert_eq!(describe(shared::audit_kind::PASSWORD_STEP, &json!({"stage": "second_factor"})), "Password accepted, second step asked");
    }

    #[test]
    fn what_the_paired_phone_allowed_refused_or_gave_way_to_is_named() {
        use shared::audit_kind as k;
        let phone = |purpose: &str| json!({"factor": "paired_phone", "phone_id": "p1", "purpose": purpose});
        assert_eq!(describe(k::FACTOR_USED, &phone("sign_in")), "Paired phone allowed a sign-in");
        assert_eq!(describe(k::FACTOR_USED, &phone("replace_phone")), "Paired phone allowed pairing a new phone in its place");
        let denied = |purpose: &str| json!({"factor": "paired_phone", "phone_id": "p1", "purpose": purpose, "denied": true});
        assert_eq!(describe(k::FACTOR_REFUSED, &denied("sign_in")), "Paired phone refused a sign-in");
        assert_eq!(describe(k::FACTOR_REFUSED, &denied("replace_phone")), "Paired phone refused pairing a new phone in its place");
        assert_eq!(describe(k::FACTOR_REFUSED, &phone("sign_in")), "Paired phone's passkey answer refused (a sign-in)");
        let replaced = json!({"factor": "paired_phone", "credential_id": "c1", "by": "phone", "by_admin": false, "replaced": true});
        assert_eq!(describe(k::FACTOR_REMOVED, &replaced), "Paired phone replaced by a new one (the old one no longer works)");
        // Paired and unpaired as any factor; an admin's reset says so.
        let added = json!({"factor": "paired_phone", "credential_id": "c1", "by": "phone"});
        assert_eq!(describe(k::FACTOR_ADDED, &added), "Added: paired phone");
        let reset = json!({"factor": "paired_phone", "credential_id": "c1", "by": "admin", "by_admin": true});
        assert_eq!(describe(k::FACTOR_REMOVED, &reset), "Removed by an admin: paired phone");
        // Without a purpose, the phone is a factor as any other.
        assert_eq!(describe(k::FACTOR_USED, &json!({"factor": "paired_phone"})), "Used: paired phone");
        // The other factors keep their words.
        assert_eq!(describe(k::FACTOR_USED, &json!({"factor": "totp"})), "Used: authenticator app");
        assert_eq!(describe(k::FACTOR_REFUSED, &json!({"factor": "totp"})), "Wrong code (authenticator app)");
    }
}
