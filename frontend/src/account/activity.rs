//! The activity log: the user's own security events, or (admins) the
//! company's; filtered by kind, newest first, older pages on demand.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{ActivityEvent, ActivityPage};

use super::{api, when, Problem, Session};

const CATEGORIES: &[(&str, &str)] = &[
    ("", "All events"),
    ("account", "Sign-ins and sign-outs"),
    ("factor", "Second factors"),
    ("passkey", "Passkeys added"),
    ("session", "Approvals"),
    ("password", "Passwords refused on approval links"),
    ("company", "Company policy"),
];

#[component]
pub fn ActivityPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let scope = RwSignal::new("mine".to_owned());
    let category = RwSignal::new(String::new());
    let events = RwSignal::new(Vec::<ActivityEvent>::new());
    let next = RwSignal::new(None::<i64>);
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let fetch = move |before: Option<i64>| {
        loading.set(true);
        let mut url = format!("/api/account/activity?scope={}&limit=50", scope.get_untracked());
        let category = category.get_untracked();
        if !category.is_empty() {
            url.push_str(&format!("&category={category}"));
        }
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        spawn_local(async move {
            match api::get::<ActivityPage>(&url).await {
                Ok(page) => {
                    session.touched();
                    error.set(None);
                    if before.is_some() {
                        events.update(|e| e.extend(page.events));
                    } else {
                        events.set(page.events);
                    }
                    next.set(page.next_before);
                }
                Err(f) => error.set(Some(f.message)),
            }
            loading.set(false);
        });
    };
    fetch(None);
    view! {
        <section class="card">
            <h1>"Activity"</h1>
            <div class="filters">
                <Show when=move || session.is_admin()>
                    <label for="scope">"Whose"</label>
                    <select id="scope" on:change=move |ev| { scope.set(event_target_value(&ev)); fetch(None); }>
                        <option value="mine">"Mine"</option>
                        <option value="company">"The whole company"</option>
                    </select>
                </Show>
                <label for="category">"Show"</label>
                <select id="category" on:change=move |ev| { category.set(event_target_value(&ev)); fetch(None); }>
                    {CATEGORIES.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
                </select>
            </div>
            {move || error.get().map(|text| view! { <Problem text=text /> })}
            <ol class="events" aria-busy=move || loading.get().to_string()>
                {move || events.get().into_iter().map(|e| view! {
                    <li>
                        <strong>{describe(&e.kind)}</strong>
                        <span class="muted">{format!(" · {}", when(&e.at))}{e.client_ip.map(|ip| format!(" · {ip}"))}</span>
                        {(scope.get_untracked() == "company").then(|| e.user_id.map(|u| view! { <span class="muted">{format!(" · user {u}")}</span> }))}
                    </li>
                }).collect_view()}
            </ol>
            <Show when=move || !loading.get() && events.with(Vec::is_empty)>
                <p class="muted">"Nothing here yet."</p>
            </Show>
            <Show when=move || next.get().is_some()>
                <button type="button" class="outline" on:click=move |_| fetch(next.get_untracked())>"Older events"</button>
            </Show>
        </section>
    }
}

fn describe(kind: &str) -> String {
    match kind {
        "account.signed_in" => "Signed in".into(),
        "account.sign_in_refused" => "Sign-in refused (wrong password)".into(),
        "account.signed_out" => "Signed out".into(),
        "account.signed_out_everywhere" => "Signed out everywhere".into(),
        "factor.added" => "Second factor added".into(),
        "factor.used" => "Second factor used".into(),
        "factor.refused" => "Wrong code".into(),
        "factor.removed" => "Second factor removed".into(),
        "passkey.enrolled" => "Passkey added".into(),
        "session.created" => "Approval requested".into(),
        "session.decided" => "Approval decided".into(),
        "password.refused" => "Wrong password on an approval link".into(),
        "password.accepted" => "Password accepted on an approval link".into(),
        "account.stepped_up" => "Confirmed it was you, to add a sign-in method".into(),
        "account.step_up_code_sent" => "Confirmation code sent by SMS".into(),
        "company.policy_changed" => "Two-factor policy changed".into(),
        other => other.to_owned(),
    }
}
