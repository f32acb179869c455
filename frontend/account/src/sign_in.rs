//! Signing in: the email and password, then, where the account has one,
//! the second factor (an authenticator app's code, a recovery code, a
//! passkey, or a confirmation on the paired phone); or a passkey alone,
//! picked from the email field's autofill where the browser offers it
//! (conditional mediation), or by a button.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::{AccountSession, CodeInput, ConfirmationAsked, ConfirmationStatus, SignIn, SignInStage};

use super::{api, home_of, said, Failure, Problem, Session};

/// Where a finished sign-in goes: back to the app that sent the user to
/// sign in (`?then=`), else where the session's stage belongs.
fn signed_in(session: Session, current: AccountSession, navigate: &impl Fn(&str, NavigateOptions)) {
    let to = home_of(current.stage);
    let back = session.then.get_value().filter(|_| current.stage == SignInStage::SignedIn);
    session.notice.set(None);
    session.set(Some(current));
    match back.zip(web_sys::window()) {
        // Another app: a page load, outside this area's router.
        Some((then, window)) => drop(window.location().assign(then)),
        None => navigate(to, NavigateOptions::default()),
    }
}

/// The apps that send a user here to sign in and take them back after
/// (`/account/sign-in?then=/device`): these paths only, never a URL.
const RETURNS: &[&str] = &["/device"];

fn return_to(then: Option<&str>) -> Option<&'static str> {
    RETURNS.iter().copied().find(|allowed| then == Some(*allowed))
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    if let Some(then) = return_to(use_query_map().read_untracked().get("then").as_deref()) {
        session.then.set_value(Some(then));
    }
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
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
        // Not a load nor a submit: a standing request that waits, silently,
        // for as long as the page is open, until the user picks a passkey
        // in the email field's suggestions (or it is withdrawn).
        spawn_local(async move {
            if !passgate_ui::webauthn::autofill_available().await {
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
    // With a passkey (`None`), or the email and password.
    let signing_in = Action::new_local(move |form: &Option<SignIn>| {
        let (form, navigate) = (form.clone(), navigate.clone());
        async move {
            let answer = match form {
                None => api::passkey::sign_in(None).await,
                Some(form) => api::post::<SignIn, AccountSession>("/api/account/sign-in", Some(&form))
                    .await
                    .inspect_err(|_| password.set(String::new())),
            };
            signed_in(session, answer?, &navigate);
            Ok(())
        }
    });
    said(signing_in, error);
    // Busy until the page is left: a sign-in that went through goes on elsewhere.
    let busy = move || signing_in.pending().get() || signing_in.value().with(|done| matches!(done, Some(Ok(()))));
    let with_passkey = move |_| {
        if untrack(busy) {
            return;
        }
        withdraw();
        error.set(None);
        signing_in.dispatch_local(None);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if untrack(busy) {
            return;
        }
        error.set(None);
        signing_in.dispatch_local(Some(SignIn { email: email.get_untracked(), password: password.get_untracked() }));
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
                    <button type="submit" class="primary" disabled=busy aria-busy=move || busy().to_string()>
                        {move || if busy() { "Signing in…" } else { "Sign in" }}
                    </button>
                </div>
            </form>
            <p class="muted">"Or, without your email and password:"</p>
            <div class="actions">
                <button type="button" class="outline" disabled=busy on:click=with_passkey>"Sign in with a passkey"</button>
            </div>
        </section>
    }
}

/// How often the page asks whether the paired phone answered.
const PHONE_POLL: Duration = Duration::from_secs(2);

/// What the page says when the paired phone refused the sign-in.
const PHONE_DENIED: &str = "Your phone refused this sign-in.";

/// What the page says when the request to the phone ran out (or was
/// superseded).
const PHONE_CANCELED: &str = "The request ran out: ask your phone again.";

/// The time the phone has to answer, in words ("2 minutes").
fn answer_within(secs: u64) -> String {
    match secs {
        60 => "1 minute".to_owned(),
        s if s > 0 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".to_owned(),
        s => format!("{s} seconds"),
    }
}

/// Where the request to the paired phone stands, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhoneAnswer {
    /// The phone has not answered: ask again later.
    Waiting,
    /// Allowed: finish the sign-in.
    Allowed,
    /// Over, with this to say.
    Over(&'static str),
    /// Already used (by another tab of this browser, say): look at the session.
    Used,
}

fn phone_answer(state: &str) -> PhoneAnswer {
    match state {
        "waiting" => PhoneAnswer::Waiting,
        "allowed" => PhoneAnswer::Allowed,
        "denied" => PhoneAnswer::Over(PHONE_DENIED),
        "used" => PhoneAnswer::Used,
        // `canceled`, and any state this page does not know.
        _ => PhoneAnswer::Over(PHONE_CANCELED),
    }
}

/// The explanation above the second step's ways.
fn second_step_hint(recovery: bool, code: bool, passkey: bool, phone: bool) -> &'static str {
    match (recovery, code, passkey, phone) {
        (true, ..) => "Type one of the recovery codes you saved when you set up your authenticator app. Each works once.",
        (false, true, _, _) => "Open your authenticator app and type the 6-digit code it shows for Passgate.",
        (false, false, true, true) => "Confirm with one of your passkeys, or on your paired phone.",
        (false, false, false, true) => {
            "Confirm this sign-in on your paired phone: it gets a request, which you approve there with its passkey."
        }
        _ => "Confirm with one of your passkeys.",
    }
}

/// The Cancel button's notice: where to turn without the phone.
fn lost_phone_hint(has_recovery: bool) -> &'static str {
    if has_recovery {
        "You signed out. Lost your phone? Sign in and use a recovery code, then replace your app from your security page; or ask your company's admin to reset your second factor or your paired phone."
    } else {
        "You signed out. Lost your phone? Ask your company's admin to reset your second factor or your paired phone; then sign in and set up your new phone."
    }
}

/// A way through the second step.
#[derive(Clone)]
enum Proof {
    /// One of the user's passkeys.
    Passkey,
    /// A code of the authenticator app, or a recovery code (`url` says which).
    Code { url: &'static str, input: CodeInput },
    /// The paired phone allowed it.
    Phone,
}

#[component]
pub fn SecondStepPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let recovery = RwSignal::new(false);
    let trust = RwSignal::new(false);
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let has = move |factor: &str| session.current.with(|s| s.as_ref().is_some_and(|s| s.second_factors.iter().any(|f| f == factor)));
    let has_passkey = move || has("passkey");
    let has_code = move || has("totp");
    let has_phone = move || has("paired_phone");
    // The paired phone: asked once, then its answer polled every 2 s
    // until it is final, the user leaves, or the page goes away.
    // `waiting`: the seconds the phone has, while the request waits.
    let waiting = RwSignal::new(None::<u64>);
    let poller = StoredValue::new(None::<IntervalHandle>);
    // Each request to the phone is a round: an answer of an older round
    // (in flight when the user asked again) is ignored.
    let round = StoredValue::new(0u32);
    let in_flight = StoredValue::new(false);
    let stop_polling = move || {
        if let Some(handle) = poller.try_update_value(Option::take).flatten() {
            handle.clear();
        }
        round.try_update_value(|r| *r = r.wrapping_add(1));
        in_flight.try_update_value(|f| *f = false);
    };
    on_cleanup(stop_polling);
    // This browser's session ended meanwhile: the sign-in page says why.
    let signed_out_by = {
        let navigate = navigate.clone();
        move |failure: Failure| {
            stop_polling();
            session.notice.set(Some(failure.message));
            navigate("/account/sign-in", NavigateOptions::default());
        }
    };
    // The second step, one way or another.
    let proving = {
        let navigate = navigate.clone();
        let signed_out_by = signed_out_by.clone();
        Action::new_local(move |proof: &Proof| {
            let (proof, navigate, signed_out_by) = (proof.clone(), navigate.clone(), signed_out_by.clone());
            let trust = trust.get_untracked();
            async move {
                let answer = match &proof {
                    Proof::Passkey => api::passkey::sign_in_step(trust).await,
                    Proof::Code { url, input } => api::post::<CodeInput, AccountSession>(url, Some(input)).await,
                    Proof::Phone => {
                        api::post::<(), AccountSession>(&format!("/api/account/sign-in/phone/finish?trust_browser={trust}"), None).await
                    }
                };
                let failure = match answer {
                    Ok(current) => {
                        signed_in(session, current, &navigate);
                        return Ok(());
                    }
                    Err(failure) => failure,
                };
                match proof {
                    Proof::Passkey => Err(failure),
                    Proof::Code { .. } if failure.signed_out() => {
                        session.notice.set(Some(failure.message));
                        navigate("/account/sign-in", NavigateOptions::default());
                        Ok(())
                    }
                    Proof::Code { .. } => {
                        code.set(String::new());
                        Err(failure)
                    }
                    Proof::Phone if failure.signed_out() => {
                        signed_out_by(failure);
                        Ok(())
                    }
                    Proof::Phone if failure.code == shared::error_code::PHONE_CONFIRMATION_DENIED => {
                        Err(Failure { message: PHONE_DENIED.to_owned(), ..failure })
                    }
                    Proof::Phone => Err(failure),
                }
            }
        })
    };
    said(proving, error);
    let poll = {
        let navigate = navigate.clone();
        let signed_out_by = signed_out_by.clone();
        move || {
            if in_flight.try_get_value() != Some(false) {
                return;
            }
            let Some(this_round) = round.try_get_value() else { return };
            in_flight.set_value(true);
            let navigate = navigate.clone();
            let signed_out_by = signed_out_by.clone();
            // A tick of the poll loop (a timer's, not a load of the page
            // nor a submit): each asks once, the round keeps the order.
            spawn_local(async move {
                let answer = api::get::<ConfirmationStatus>("/api/account/sign-in/phone").await;
                // Gone, or another round since: not this answer's business.
                if round.try_get_value() != Some(this_round) {
                    return;
                }
                in_flight.set_value(false);
                match answer.map(|status| phone_answer(&status.state)) {
                    Ok(PhoneAnswer::Waiting) => error.set(None),
                    Ok(PhoneAnswer::Allowed) => {
                        stop_polling();
                        waiting.set(None);
                        proving.dispatch_local(Proof::Phone);
                    }
                    // A confirmation already used (another tab finished the
                    // sign-in?): signed in, or ask again.
                    Ok(PhoneAnswer::Used) => {
                        stop_polling();
                        waiting.set(None);
                        match api::session().await {
                            Ok(current) if current.stage == SignInStage::SignedIn => signed_in(session, current, &navigate),
                            _ => error.set(Some(PHONE_CANCELED.to_owned())),
                        }
                    }
                    Ok(PhoneAnswer::Over(text)) => {
                        stop_polling();
                        waiting.set(None);
                        error.set(Some(text.to_owned()));
                    }
                    Err(failure) if failure.signed_out() => signed_out_by(failure),
                    // Not reached: said, and asked again at the next tick.
                    Err(failure) if failure.status == 0 => error.set(Some(failure.message)),
                    Err(failure) => {
                        stop_polling();
                        waiting.set(None);
                        error.set(Some(failure.message));
                    }
                }
            });
        }
    };
    // Asking the paired phone, then polling its answer.
    let asking = {
        let signed_out_by = signed_out_by.clone();
        Action::new_local(move |_: &()| {
            let (poll, signed_out_by) = (poll.clone(), signed_out_by.clone());
            async move {
                let asked = api::post::<(), ConfirmationAsked>("/api/account/sign-in/phone", None).await;
                // The page went away meanwhile: nothing to poll for.
                if round.try_get_value().is_none() {
                    return Ok(());
                }
                match asked {
                    Ok(asked) => {
                        waiting.set(Some(asked.expires_in_secs));
                        if let Ok(handle) = set_interval_with_handle(poll, PHONE_POLL) {
                            poller.set_value(Some(handle));
                        }
                        Ok(())
                    }
                    Err(failure) if failure.signed_out() => {
                        signed_out_by(failure);
                        Ok(())
                    }
                    Err(failure) => Err(failure),
                }
            }
        })
    };
    said(asking, error);
    // Busy until the page is left: a second step that went through goes on elsewhere.
    let busy = move || proving.pending().get() || asking.pending().get() || proving.value().with(|done| matches!(done, Some(Ok(()))));
    let with_passkey = move |_| {
        if untrack(busy) {
            return;
        }
        error.set(None);
        proving.dispatch_local(Proof::Passkey);
    };
    let with_phone = move |_| {
        if untrack(busy) || waiting.get_untracked().is_some() {
            return;
        }
        stop_polling();
        error.set(None);
        asking.dispatch_local(());
    };

    let has_recovery = move || has("recovery_code");
    if session.current.with_untracked(Option::is_none) {
        // Opened directly (a reload): where does this browser stand?
        let current = LocalResource::new(api::session);
        let navigate = navigate.clone();
        Effect::new(move |_| match current.get() {
            Some(Ok(current)) => session.set(Some(current)),
            Some(Err(_)) => navigate("/account/sign-in", NavigateOptions::default()),
            None => {}
        });
    }
    // No phone at hand: out, with where to turn.
    let signing_out = super::signing_out(navigate);
    let cancel = move |_: leptos::ev::MouseEvent| {
        signing_out.dispatch_local(lost_phone_hint(has_recovery()));
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if untrack(busy) {
            return;
        }
        error.set(None);
        let url = if recovery.get_untracked() { "/api/account/sign-in/recovery-code" } else { "/api/account/sign-in/totp" };
        let input = CodeInput { code: code.get_untracked(), trust_browser: trust.get_untracked() };
        proving.dispatch_local(Proof::Code { url, input });
    };
    view! {
        <section class="card">
            <h1>"Second step"</h1>
            <p class="muted">{move || second_step_hint(recovery.get(), has_code(), has_passkey(), has_phone())}</p>
            <Show when=has_passkey>
                <div class="actions">
                    <button type="button" class=move || if has_code() { "outline" } else { "primary" } disabled=busy on:click=with_passkey>"Use a passkey"</button>
                </div>
            </Show>
            <Show when=has_phone>
                <div class="actions">
                    <button type="button" class=move || if has_code() || has_passkey() { "outline" } else { "primary" }
                        disabled=move || busy() || waiting.get().is_some()
                        aria-busy=move || waiting.get().is_some().to_string()
                        on:click=with_phone>"Confirm on my paired phone"</button>
                </div>
            </Show>
            // A live region present from the start: its text is announced when it comes.
            <p class="notice" role="status" hidden=move || waiting.get().is_none()>
                {move || waiting.get().map(|secs| format!("Check your phone: approve the sign-in there ({})", answer_within(secs)))}
            </p>
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
                    <button type="submit" class="primary" disabled=busy aria-busy=move || busy().to_string()>
                        {move || if busy() { "Checking…" } else { "Continue" }}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phones_states_end_the_wait_with_words_or_go_on() {
        assert_eq!(phone_answer("waiting"), PhoneAnswer::Waiting);
        assert_eq!(phone_answer("allowed"), PhoneAnswer::Allowed);
        assert_eq!(phone_answer("denied"), PhoneAnswer::Over("Your phone refused this sign-in."));
        assert_eq!(phone_answer("canceled"), PhoneAnswer::Over("The request ran out: ask your phone again."));
        assert_eq!(phone_answer("used"), PhoneAnswer::Used);
        assert_eq!(phone_answer("something new"), PhoneAnswer::Over(PHONE_CANCELED), "an unknown state ends the wait");
    }

    #[test]
    fn the_time_to_answer_is_in_words() {
        assert_eq!(answer_within(120), "2 minutes");
        assert_eq!(answer_within(60), "1 minute");
        assert_eq!(answer_within(90), "90 seconds");
        assert_eq!(answer_within(1), "1 second");
    }

    #[test]
    fn a_phone_only_user_is_told_of_the_phone_and_of_the_admins_reset() {
        assert!(second_step_hint(false, false, false, true).contains("paired phone"));
        assert!(second_step_hint(false, false, true, true).contains("passkeys, or on your paired phone"));
        assert_eq!(second_step_hint(false, false, true, false), "Confirm with one of your passkeys.");
        assert!(second_step_hint(false, true, true, true).starts_with("Open your authenticator app"));
        assert!(second_step_hint(true, true, false, true).starts_with("Type one of the recovery codes"));
        for hint in [lost_phone_hint(true), lost_phone_hint(false)] {
            assert!(hint.contains("admin to reset your second factor or your paired phone"), "{hint}");
        }
        assert!(lost_phone_hint(true).starts_with("You signed out. Lost your phone? Sign in and use a recovery code"));
        assert!(!lost_phone_hint(false).contains("recovery code"), "no codes to use");
    }

    #[test]
    fn a_sign_in_goes_back_only_to_a_listed_app() {
        assert_eq!(return_to(Some("/device")), Some("/device"));
        for other in ["https://evil.example/device", "//evil.example", "/device/../account", "/devices", "", "javascript:alert(1)"] {
            assert_eq!(return_to(Some(other)), None, "{other}");
        }
        assert_eq!(return_to(None), None);
    }
}
