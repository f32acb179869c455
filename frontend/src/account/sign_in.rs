//! Signing in: the email and password, then, where the account has one,
//! the second factor (an authenticator app's code, a recovery code, or a
//! passkey); or a passkey alone, picked from the email field's autofill
//! where the browser offers it (conditional mediation), or by a button.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use shared::{AccountSession, CodeInput, SignIn};

use super::{api, home_of, Problem, Session};

/// Where a finished sign-in goes.
fn signed_in(session: Session, current: AccountSession, navigate: &impl Fn(&str, NavigateOptions)) {
    let to = home_of(current.stage);
    session.notice.set(None);
    session.set(Some(current));
    navigate(to, NavigateOptions::default());
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // The autofill's pending passkey request, withdrawn when the user
    // takes another way or leaves the page.
    let autofill = StoredValue::new_local(None::<web_sys::AbortController>);
    let withdraw = move || {
        if let Some(controller) = autofill.try_update_value(Option::take).flatten() {
            controller.abort();
        }
    };
    on_cleanup(withdraw);
    {
        let navigate = navigate.clone();
        spawn_local(async move {
            if !api::passkey::autofill_available().await {
                return;
            }
            let Ok(controller) = web_sys::AbortController::new() else { return };
            let signal = controller.signal();
            autofill.set_value(Some(controller));
            match api::passkey::sign_in(Some(&signal)).await {
                Ok(current) => signed_in(session, current, &navigate),
                // A refusal by the server is the user's business; the
                // browser's own (withdrawn, dismissed) is not.
                Err(failure) if failure.status != 0 => error.set(Some(failure.message)),
                Err(_) => {}
            }
        });
    }
    let with_passkey = {
        let navigate = navigate.clone();
        move |_| {
            if busy.get_untracked() {
                return;
            }
            withdraw();
            busy.set(true);
            error.set(None);
            let navigate = navigate.clone();
            spawn_local(async move {
                match api::passkey::sign_in(None).await {
                    Ok(current) => signed_in(session, current, &navigate),
                    Err(failure) => {
                        error.set(Some(failure.message));
                        busy.set(false);
                    }
                }
            });
        }
    };
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
                Ok(current) => signed_in(session, current, &navigate),
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
                    <input id="email" type="email" autocomplete="username webauthn" required
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
            <p class="muted">"Or, without your email and password:"</p>
            <div class="actions">
                <button type="button" class="outline" disabled=move || busy.get() on:click=with_passkey>"Sign in with a passkey"</button>
            </div>
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
    let has_passkey = move || session.current.with(|s| s.as_ref().is_some_and(|s| s.second_factors.iter().any(|f| f == "passkey")));
    let has_code = move || session.current.with(|s| s.as_ref().is_some_and(|s| s.second_factors.iter().any(|f| f == "totp")));
    let with_passkey = {
        let navigate = navigate.clone();
        move |_| {
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            error.set(None);
            let navigate = navigate.clone();
            spawn_local(async move {
                match api::passkey::sign_in_step(trust.get_untracked()).await {
                    Ok(current) => {
                        session.set(Some(current));
                        navigate("/account/security", NavigateOptions::default());
                    }
                    Err(failure) => {
                        error.set(Some(failure.message));
                        busy.set(false);
                    }
                }
            });
        }
    };
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
    // No phone at hand: out, with where to turn.
    let cancel = {
        let navigate = navigate.clone();
        move |_: leptos::ev::MouseEvent| {
            super::sign_out(
                session,
                navigate.clone(),
                "You signed out. Lost your phone? Sign in and use a recovery code, then replace your app from your security page; or ask your company's admin to reset your second factor.",
            )
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        let url = if recovery.get_untracked() { "/api/account/sign-in/recovery-code" } else { "/api/account/sign-in/totp" };
        let input = CodeInput { code: code.get_untracked(), trust_browser: trust.get_untracked() };
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
            } else if has_code() {
                "Open your authenticator app and type the 6-digit code it shows for Passgate."
            } else {
                "Confirm with one of your passkeys."
            }}</p>
            <Show when=has_passkey>
                <div class="actions">
                    <button type="button" class=move || if has_code() { "outline" } else { "primary" } disabled=move || busy.get() on:click=with_passkey.clone()>"Use a passkey"</button>
                </div>
            </Show>
            <form on:submit=submit novalidate>
                <Show when=move || has_code() || recovery.get()>
                <div class="field">
                    <label for="code">{move || if recovery.get() { "Recovery code" } else { "Code from your app" }}</label>
                    <input id="code" type="text" required
                        autocomplete=move || if recovery.get() { "off" } else { "one-time-code" }
                        inputmode=move || if recovery.get() { "text" } else { "numeric" }
                        prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
                </div>
                </Show>
                <label class="choice">
                    <input type="checkbox" prop:checked=move || trust.get() on:change=move |ev| trust.set(event_target_checked(&ev)) />
                    "Trust this browser for 90 days (your password alone will sign you in here; never for payments)"
                </label>
                {move || error.get().map(|text| view! { <Problem text=text /> })}
                <div class="actions">
                    <Show when=move || has_code() || recovery.get()>
                    <button type="submit" class="primary" disabled=move || busy.get() aria-busy=move || busy.get().to_string()>
                        {move || if busy.get() { "Checking…" } else { "Continue" }}
                    </button>
                    </Show>
                    <Show when=has_recovery>
                        <button type="button" class="link" on:click=move |_| { recovery.update(|r| *r = !*r); code.set(String::new()); error.set(None); }>
                            {move || if recovery.get() { "Use my authenticator app" } else { "Use a recovery code" }}
                        </button>
                    </Show>
                    <button type="button" class="outline" on:click=cancel>"Cancel"</button>
                </div>
            </form>
        </section>
    }
}
