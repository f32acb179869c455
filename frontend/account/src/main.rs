//! The account area (`/account/…`), a bundle of its own so that the
//! approval page does not grow: sign-in and its second step, the security
//! overview (authenticator app, passkeys), the company's administration
//! and the activity log. The session lives in an HttpOnly cookie; the page
//! keeps its view (the user, the stage, the CSRF token) and counts down the
//! five minutes of inactivity, warning the last minute.

mod activity;
mod api;
mod company;
mod focus;
mod recovery;
mod security;
mod sign_in;
mod step_up;

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::hooks::use_navigate;
use leptos_router::{path, NavigateOptions};
use shared::{AccountSession, SignInStage};

use focus::Arrival;
use passgate_ui::Failure;

fn main() {
    leptos::mount::mount_to_body(AccountApp);
}

/// Seconds before the end of an idle session when the warning shows.
const WARN_SECS: u64 = 60;

/// The browser's session as the page knows it, shared by every page.
#[derive(Clone, Copy)]
pub struct Session {
    pub current: RwSignal<Option<AccountSession>>,
    /// Seconds before the session ends if no request is made.
    pub left: RwSignal<u64>,
    /// Shown on the sign-in page (why the user is there).
    pub notice: RwSignal<Option<String>>,
    /// The app to go back to once signed in (`/account/sign-in?then=`).
    pub then: StoredValue<Option<&'static str>>,
}

impl Session {
    pub fn set(&self, session: Option<AccountSession>) {
        passgate_ui::api::remember_csrf(session.as_ref().map(|s| s.csrf_token.clone()));
        if let Some(s) = &session {
            self.left.set(s.expires_in_secs);
        }
        self.current.set(session);
    }

    /// A request went through: the idle clock starts again.
    pub fn touched(&self) {
        if let Some(s) = self.current.get_untracked() {
            self.left.set(s.idle_timeout_secs);
        }
    }

    /// A session that ended while the tab slept: the sign-in page says why.
    pub fn explain(&self, failure: &Failure) {
        if failure.session_ended() {
            self.notice.set(Some(format!("{}.", failure.message)));
        }
    }

    pub fn is_admin(&self) -> bool {
        self.current.with(|s| s.as_ref().is_some_and(|s| s.user.role == "admin"))
    }
}

/// Where a session at this stage belongs.
pub fn home_of(stage: SignInStage) -> &'static str {
    match stage {
        SignInStage::SecondFactor => "/account/sign-in/second-step",
        SignInStage::Enrol => "/account/security/authenticator",
        SignInStage::SignedIn => "/account/security",
    }
}

#[component]
pub fn AccountApp() -> impl IntoView {
    let session =
        Session { current: RwSignal::new(None), left: RwSignal::new(0), notice: RwSignal::new(None), then: StoredValue::new(None) };
    provide_context(session);
    api::keep(session);
    focus::provide();
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if session.current.with_untracked(Option::is_some) {
                session.left.update(|left| *left = left.saturating_sub(1));
            }
        },
        Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    view! {
        <Router>
            <main class="page wide">
                <header class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Passgate"
                    <Nav />
                </header>
                <IdleWarning />
                // Each page takes focus when the user moves to it (focus.rs).
                <Routes fallback=|| view! { <Arrival><section class="card"><h1>"Page not found"</h1><p><A href="/account/security">"Your security"</A></p></section></Arrival> }>
                    <Route path=path!("/account") view=Start />
                    <Route path=path!("/account/sign-in") view=|| view! { <Arrival field="email"><sign_in::SignInPage /></Arrival> } />
                    <Route path=path!("/account/sign-in/second-step") view=|| view! { <Arrival field="code"><sign_in::SecondStepPage /></Arrival> } />
                    <Route path=path!("/account/security") view=|| view! { <Arrival><Guarded><security::SecurityPage /></Guarded></Arrival> } />
                    <Route path=path!("/account/security/authenticator") view=|| view! { <Arrival><Guarded enrol=true><security::AuthenticatorPage /></Guarded></Arrival> } />
                    <Route path=path!("/account/security/recovery-codes") view=|| view! { <Arrival><Guarded><recovery::RecoveryCodesPage /></Guarded></Arrival> } />
                    <Route path=path!("/account/activity") view=|| view! { <Arrival><Guarded><activity::ActivityPage /></Guarded></Arrival> } />
                    <Route path=path!("/account/company") view=|| view! { <Arrival><Guarded><company::CompanyPage /></Guarded></Arrival> } />
                </Routes>
            </main>
        </Router>
    }
}

/// `/account`: where the session belongs, or the sign-in.
#[component]
fn Start() -> impl IntoView {
    let navigate = use_navigate();
    let session = expect_context::<Session>();
    let current = LocalResource::new(api::session);
    Effect::new(move |_| {
        let to = match current.get() {
            None => return,
            Some(Ok(current)) => {
                let to = home_of(current.stage);
                session.set(Some(current));
                to
            }
            Some(Err(failure)) => {
                session.explain(&failure);
                "/account/sign-in"
            }
        };
        navigate(to, NavigateOptions { replace: true, ..Default::default() });
    });
    view! { <Loading what="your account" /> }
}

/// Asks before an act that cannot be undone, with the browser's own
/// dialog (focus, keyboard and screen readers handled); `false` if the
/// user keeps things as they are.
pub fn confirmed(question: &str) -> bool {
    web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(false)
}

/// Ending this browser's session (at any stage: a user without their
/// phone is never stuck on the second step): an action of the page that
/// offers it, dispatched with the notice the sign-in then shows.
pub fn signing_out(navigate: impl Fn(&str, NavigateOptions) + Clone + 'static) -> Action<&'static str, ()> {
    let session = expect_context::<Session>();
    Action::new_local(move |notice: &&'static str| {
        let (notice, navigate) = (*notice, navigate.clone());
        async move {
            let _ = api::call::<()>("POST", "/api/account/sign-out", None).await;
            session.set(None);
            session.notice.set(Some(notice.into()));
            navigate("/account/sign-in", NavigateOptions::default());
        }
    })
}

#[component]
fn Nav() -> impl IntoView {
    let session = expect_context::<Session>();
    let signing_out = signing_out(use_navigate());
    let signed_in = move || session.current.with(|s| s.as_ref().is_some_and(|s| s.stage == SignInStage::SignedIn));
    let any_session = move || session.current.with(Option::is_some);
    let sign_out = move |_| {
        signing_out.dispatch_local("You signed out.");
    };
    view! {
        <Show when=any_session>
            <nav aria-label="Account">
                <Show when=signed_in>
                    <A href="/account/security">"Security"</A>
                    <A href="/account/activity">"Activity"</A>
                    <Show when=move || session.is_admin()>
                        <A href="/account/company">"Company"</A>
                    </Show>
                </Show>
                <button type="button" class="link" on:click=sign_out>"Sign out"</button>
            </nav>
        </Show>
    }
}

/// The last minute of an idle session: a warning, and a way to stay.
#[component]
fn IdleWarning() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if session.current.with(Option::is_some) && session.left.get() == 0 {
            session.set(None);
            session.notice.set(Some("You were signed out after 5 minutes without activity.".into()));
            navigate("/account/sign-in", NavigateOptions::default());
        }
    });
    let staying = Action::new_local(move |_: &()| async move {
        match api::post::<(), AccountSession>("/api/account/session/keep-alive", None).await {
            Ok(current) => session.set(Some(current)),
            Err(_) => session.left.set(0),
        }
    });
    let stay = move |_| {
        staying.dispatch_local(());
    };
    let warn = move || session.current.with(Option::is_some) && (1..=WARN_SECS).contains(&session.left.get());
    // The alert is written once, when the warning shows: a screen reader
    // says it once. The seconds tick in plain text, outside any live region.
    view! {
        <Show when=warn>
            <div class="warning">
                <p role="alert">{idle_notice(session.left.get_untracked())}</p>
                <p class="timer">{move || time_left(session.left.get())}</p>
                <button type="button" class="primary" on:click=stay>"Stay signed in"</button>
            </div>
        </Show>
    }
}

/// The warning as it is announced, `left` seconds before the sign-out.
fn idle_notice(left: u64) -> String {
    if left >= 60 {
        "You will be signed out in 1 minute without activity.".into()
    } else {
        format!("You will be signed out in {left} seconds without activity.")
    }
}

/// The countdown on screen: `Time left: 0:42`.
fn time_left(left: u64) -> String {
    format!("Time left: {}", passgate_ui::countdown(left))
}

/// Shows `children` once the browser is known to be signed in (at the
/// right stage); otherwise goes where the session belongs.
#[component]
fn Guarded(children: ChildrenFn, #[prop(optional)] enrol: bool) -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let ready = RwSignal::new(false);
    let check = move |current: &AccountSession| match current.stage {
        SignInStage::SignedIn => true,
        SignInStage::Enrol => enrol,
        SignInStage::SecondFactor => false,
    };
    match session.current.get_untracked() {
        Some(current) if check(&current) => ready.set(true),
        Some(current) => navigate(home_of(current.stage), NavigateOptions { replace: true, ..Default::default() }),
        None => {
            let answer = LocalResource::new(api::session);
            Effect::new(move |_| match answer.get() {
                None => {}
                Some(Ok(current)) => {
                    let ok = check(&current);
                    let home = home_of(current.stage);
                    session.set(Some(current));
                    if ok {
                        ready.set(true);
                    } else {
                        navigate(home, NavigateOptions { replace: true, ..Default::default() });
                    }
                }
                Some(Err(failure)) => {
                    session.explain(&failure);
                    navigate("/account/sign-in", NavigateOptions { replace: true, ..Default::default() });
                }
            });
        }
    }
    view! {
        <Show when=move || ready.get() fallback=|| view! { <Loading what="your account" /> }>
            {children()}
        </Show>
    }
}

#[component]
pub fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <section class="card" aria-busy="true">
            <span class="visually-hidden">{format!("Loading {what}…")}</span>
            <div class="skeleton big"></div>
            <div class="skeleton"></div>
            <div class="skeleton"></div>
        </section>
    }
}

/// An error, announced.
#[component]
pub fn Problem(text: String) -> impl IntoView {
    view! { <p class="error" role="alert">{text}</p> }
}

/// A change whose failure a page says in its one place for them
/// (`error`, shared by the page's changes): the failure of the `action`'s
/// latest answer, when it failed.
pub fn said<I: 'static, O: 'static>(action: Action<I, Result<O, Failure>>, error: RwSignal<Option<String>>) {
    Effect::new(move |_| {
        if let Some(text) = action.value().with(|answer| answer.as_ref().and_then(|a| a.as_ref().err()).map(|f| f.message.clone())) {
            error.set(Some(text));
        }
    });
}

/// Removing what `DELETE {url}` removes, then `on_change`; its failure
/// said in the page's `error`, as [`said`] does.
pub fn removing(error: RwSignal<Option<String>>, on_change: impl Fn() + Copy + 'static) -> Action<String, Result<(), Failure>> {
    let removing = Action::new_local(move |url: &String| {
        let url = url.clone();
        async move {
            api::call::<()>("DELETE", &url, None).await?;
            on_change();
            Ok(())
        }
    });
    said(removing, error);
    removing
}

/// `2026-11-25T11:48:48.876Z` as `2026-11-25 11:48 UTC`.
pub fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_warning_says_the_time_left_and_the_countdown_shows_it_in_m_ss() {
        assert_eq!(idle_notice(WARN_SECS), "You will be signed out in 1 minute without activity.");
        assert_eq!(idle_notice(20), "You will be signed out in 20 seconds without activity.");
        assert_eq!(time_left(60), "Time left: 1:00");
        assert_eq!(time_left(9), "Time left: 0:09");
    }
}
