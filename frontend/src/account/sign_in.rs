//! Signing in: the email and password, then, where the account has one,
//! the second factor (an authenticator app's code, or a recovery code).

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use shared::{AccountSession, CodeInput, SignIn};

use super::{api, home_of, Problem, Session};

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        let form = SignIn { email: email.get_untracked(), password: password.get_untracked() };
        spawn_local(async move {
            match api::post::<SignIn, AccountSession>("/api/account/sign-in", Some(&form)).await {
                Ok(current) => {
                    let to = home_of(current.stage);
                    session.notice.set(None);
                    session.set(Some(current));
                    navigate(to, NavigateOptions::default());
                }
                Err(failure) => {
                    password.set(String::new());
                    error.set(Some(failure.message));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <section class="card">
            <h1>"Sign in"</h1>
            {move || session.notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
            <form on:submit=submit novalidate>
                <div class="field">
                    <label for="email">"Email"</label>
                    <input id="email" type="email" autocomplete="username" required
                        prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev)) />
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" type="password" autocomplete="current-password" required
                        prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) />
                </div>
                {move || error.get().map(|text| view! { <Problem text=text /> })}
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || busy.get() aria-busy=move || busy.get().to_string()>
                        {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </div>
            </form>
        </section>
    }
}

#[component]
pub fn SecondStepPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let recovery = RwSignal::new(false);
    let trust = RwSignal::new(false);
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let has_recovery = move || session.current.with(|s| s.as_ref().is_some_and(|s| s.second_factors.iter().any(|f| f == "recovery_code")));
    if session.current.with_untracked(Option::is_none) {
        // Opened directly (a reload): where does this browser stand?
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::get::<AccountSession>("/api/account/session").await {
                Ok(current) => session.set(Some(current)),
                Err(_) => navigate("/account/sign-in", NavigateOptions::default()),
            }
        });
    }
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        let url = if recovery.get_untracked() { "/api/account/sign-in/recovery-code" } else { "/api/account/sign-in/totp" };
        let input = CodeInput { code: code.get_untracked(), trust_device: trust.get_untracked() };
        spawn_local(async move {
            match api::post::<CodeInput, AccountSession>(url, Some(&input)).await {
                Ok(current) => {
                    session.set(Some(current));
                    navigate("/account/security", NavigateOptions::default());
                }
                Err(failure) if failure.signed_out() => {
                    session.notice.set(Some(failure.message));
                    navigate("/account/sign-in", NavigateOptions::default());
                }
                Err(failure) => {
                    code.set(String::new());
                    error.set(Some(failure.message));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <section class="card">
            <h1>"Second step"</h1>
            <p class="muted">{move || if recovery.get() {
                "Type one of the recovery codes you saved when you set up your authenticator app. Each works once."
            } else {
                "Open your authenticator app and type the 6-digit code it shows for Passgate."
            }}</p>
            <form on:submit=submit novalidate>
                <div class="field">
                    <label for="code">{move || if recovery.get() { "Recovery code" } else { "Code from your app" }}</label>
                    <input id="code" type="text" required
                        autocomplete=move || if recovery.get() { "off" } else { "one-time-code" }
                        inputmode=move || if recovery.get() { "text" } else { "numeric" }
                        prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
                </div>
                <label class="choice">
                    <input type="checkbox" prop:checked=move || trust.get() on:change=move |ev| trust.set(event_target_checked(&ev)) />
                    "Trust this browser for 90 days (your password alone will sign you in here; never for payments)"
                </label>
                {move || error.get().map(|text| view! { <Problem text=text /> })}
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || busy.get() aria-busy=move || busy.get().to_string()>
                        {move || if busy.get() { "Checking…" } else { "Continue" }}
                    </button>
                    <Show when=has_recovery>
                        <button type="button" class="link" on:click=move |_| { recovery.update(|r| *r = !*r); code.set(String::new()); error.set(None); }>
                            {move || if recovery.get() { "Use my authenticator app" } else { "Use a recovery code" }}
                        </button>
                    </Show>
                </div>
            </form>
        </section>
    }
}
