//! Pairing this phone (PROTOCOL.md, "The paired phone"): signed in (the
//! account area's sign-in, which brings the user back), the password if
//! it is not fresh and a code sent by SMS to the account's phone number,
//! then the phone's own passkey; then notifications.

use leptos::prelude::*;
use passgate_ui::Failure;
use shared::{error_code, SignInStage, StepUp, StepUpProof};

use crate::notifications::NotificationsPanel;
use crate::{api, Failed, Loading};

/// Where the account area's sign-in sends the user back to.
const SIGN_IN: &str = "/account/sign-in?then=/device";

#[component]
pub fn Pairing(#[prop(into)] on_paired: Callback<()>) -> impl IntoView {
    let session = LocalResource::new(api::session);
    // Paired: the notifications step comes before the approvals.
    let paired = RwSignal::new(false);
    view! {
        {move || match (paired.get(), session.get()) {
            (true, _) => view! {
                <section class="card">
                    <h1>"This phone is paired"</h1>
                    <p>"Approvals for your account now come to this phone. You confirm each one with this phone's screen lock."</p>
                    <NotificationsPanel on=false on_done=on_paired />
                </section>
            }.into_any(),
            (false, None) => view! { <Loading what="Checking your sign-in" /> }.into_any(),
            (false, Some(Err(failure))) => view! { <Failed failure retry=move || session.refetch() /> }.into_any(),
            (false, Some(Ok(Some(signed_in)))) if signed_in.stage == SignInStage::SignedIn => view! {
                <Proofs name=signed_in.user.display_name on_paired=move || paired.set(true) />
            }.into_any(),
            // Signed out, or half signed in (a second step or a factor to
            // set up): the account area's sign-in does it.
            (false, Some(Ok(_))) => view! {
                <section class="card">
                    <h1>"Pair this phone"</h1>
                    <p>"Approve payments and sign-ins from this phone, with its fingerprint, face or screen lock."</p>
                    <p class="muted">"First, sign in to your account."</p>
                    <div class="actions">
                        // Another area: a page load, not this app's router.
                        <a class="button primary" href=SIGN_IN rel="external">"Sign in"</a>
                    </div>
                </section>
            }.into_any(),
        }}
    }
}

/// What the pairing still needs: the password (unless fresh) and a code
/// sent by SMS; then the passkey.
#[component]
fn Proofs(name: String, #[prop(into)] on_paired: Callback<()>) -> impl IntoView {
    let due = LocalResource::new(api::pairing_proofs);
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let sent = RwSignal::new(false);
    // The account has a paired phone: that one must allow this one.
    let replacing = RwSignal::new(false);
    let sending = Action::new_local(|_: &()| api::send_code());
    let proving = Action::new_local(|proof: &StepUpProof| {
        let proof = proof.clone();
        async move {
            let proven = api::prove(&proof).await?;
            if !proven.done {
                return Ok(proven);
            }
            api::pair().await.map(|_| proven)
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = sending.value().get() {
            sent.set(true);
        }
    });
    Effect::new(move |_| match proving.value().get() {
        Some(Ok(StepUp { done: true, .. })) => on_paired.run(()),
        Some(Err(failure)) if failure.code == error_code::PHONE_ALREADY_PAIRED => replacing.set(true),
        Some(Err(failure)) => {
            if failure.code == error_code::PASSWORD_INVALID {
                password.set(String::new());
            }
            code.set(String::new());
        }
        _ => {}
    });
    let failure = move || -> Option<Failure> {
        match (sending.value().get(), proving.value().get()) {
            (_, Some(Err(f))) | (Some(Err(f)), _) => Some(f),
            _ => None,
        }
    };
    let needs_password = move || due.get().and_then(Result::ok).is_some_and(|d| d.password);
    let busy = move || sending.pending().get() || proving.pending().get();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = needs_password().then(|| password.get_untracked());
        proving.dispatch_local(StepUpProof { password, code: Some(code.get_untracked().trim().to_owned()), by_sms: false });
    };
    view! {
        <Show when=move || !replacing.get() fallback=move || view! { <Replace on_paired /> }>
        <section class="card">
            <h1>"Pair this phone"</h1>
            <p>"Signed in as " <strong>{name.clone()}</strong> ". To pair this phone, confirm it's you with a code we send by SMS to your account's phone number."</p>
            {move || match due.get() {
                None => view! { <p role="status" class="muted">"Checking what to confirm…"</p> }.into_any(),
                Some(Err(failure)) => view! { <p class="error" role="alert">{failure.message}</p> }.into_any(),
                Some(Ok(_)) => view! {
                    <form on:submit=submit>
                        <Show when=needs_password>
                            <div class="field">
                                <label for="password">"Your password"</label>
                                <input id="password" type="password" autocomplete="current-password" required
                                    prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                            </div>
                        </Show>
                        <Show when=move || sent.get()>
                            <div class="field">
                                <label for="code">"The code we sent by SMS"</label>
                                <input id="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]*" maxlength="8" required
                                    prop:value=code on:input=move |ev| code.set(event_target_value(&ev)) />
                            </div>
                        </Show>
                        {move || failure().map(|f| view! { <p class="error" role="alert">{f.message}</p> })}
                        <div class="actions">
                            <Show
                                when=move || sent.get()
                                fallback=move || view! {
                                    <button type="button" class="primary" disabled=busy on:click=move |_| { sending.dispatch_local(()); }>
                                        {move || if sending.pending().get() { "Sending…" } else { "Send me a code" }}
                                    </button>
                                }
                            >
                                <button type="submit" class="primary" disabled=busy>
                                    {move || if proving.pending().get() { "Pairing… follow your phone's prompt" } else { "Pair this phone" }}
                                </button>
                                <button type="button" class="link" disabled=busy on:click=move |_| { sending.dispatch_local(()); }>
                                    "Send a new code"
                                </button>
                            </Show>
                        </div>
                    </form>
                }.into_any(),
            }}
            <p class="muted small">"Pairing creates a passkey on this phone. It stays on this phone, and every approval asks for its fingerprint, face or screen lock."</p>
        </section>
        </Show>
    }
}

/// Pairing in place of the paired phone, once that phone allowed it
/// (PROTOCOL.md 10b): asked, then its answer polled every 2 s.
#[component]
fn Replace(#[prop(into)] on_paired: Callback<()>) -> impl IntoView {
    let asking = Action::new_local(|_: &()| api::ask_replacement());
    let checking = Action::new_local(|_: &()| api::replacement());
    let pairing = Action::new_local(|_: &()| api::pair());
    // Seconds the paired phone has left; `Some` while its answer is awaited.
    let left = RwSignal::new(None::<u64>);
    let outcome = RwSignal::new(None::<&'static str>);
    Effect::new(move |_| {
        if let Some(Ok(asked)) = asking.value().get() {
            outcome.set(None);
            left.set(Some(asked.expires_in_secs));
        }
    });
    if let Ok(handle) = set_interval_with_handle(
        move || {
            let Some(seconds) = left.get_untracked() else { return };
            left.set(Some(seconds.saturating_sub(1)));
            if seconds % 2 == 0 && !checking.pending().get_untracked() {
                checking.dispatch_local(());
            }
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    Effect::new(move |_| {
        let Some(Ok(status)) = checking.value().get() else { return };
        let said = match status.state.as_str() {
            "waiting" => return,
            "allowed" => {
                pairing.dispatch_local(());
                None
            }
            "denied" => Some("Your paired phone refused. If that was not you, it keeps approving for your account."),
            _ => Some("The request ran out before your paired phone answered. Ask again."),
        };
        left.set(None);
        outcome.set(said);
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = pairing.value().get() {
            on_paired.run(());
        }
    });
    let failure = move || match (asking.value().get(), pairing.value().get()) {
        (_, Some(Err(f))) | (Some(Err(f)), _) => Some(f.message),
        _ => None,
    };
    view! {
        <section class="card">
            <h1>"Your account has a paired phone"</h1>
            <p>"One phone is paired at a time. Your paired phone must allow this one to take its place: it gets a notification, or open Passgate on it."</p>
            {move || outcome.get().map(|said| view! { <p class="error" role="alert">{said}</p> })}
            {move || failure().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match (left.get(), pairing.pending().get()) {
                (_, true) => view! { <p role="status">"Allowed. Confirm with this phone's screen lock to pair it…"</p> }.into_any(),
                (Some(seconds), false) => view! {
                    <p role="status">"Waiting for your paired phone to allow this one (" {passgate_ui::countdown(seconds)} ")"</p>
                }.into_any(),
                (None, false) => view! {
                    <div class="actions">
                        <button class="primary" disabled=move || asking.pending().get() on:click=move |_| { asking.dispatch_local(()); }>
                            "Ask my paired phone"
                        </button>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}
