//! "Confirm it's you": before the account area binds a new factor (a
//! passkey, an authenticator app), the session proves two factors again
//! within the last 5 minutes. The panel offers exactly the ways the server
//! lists: a passkey (alone, it proves both), the password, a code of the
//! authenticator app or, for a user with no second factor (or replacing
//! the app they lost), a code by SMS.
//! Once the server answers `done`, the action that asked goes on by itself.

use std::time::Duration;

use leptos::prelude::*;
use shared::{error_code, StepUp, StepUpProof};

use super::{api, Failure, Problem};

/// What a step-up is for: binding a factor (or renewing recovery codes),
/// or replacing the authenticator app, which a user who lost it may do
/// with the password and a code by SMS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    #[default]
    Bind,
    ReplaceApp,
}

impl Purpose {
    /// The step-up endpoints' `?for=`.
    pub fn query(self) -> &'static str {
        match self {
            Purpose::Bind => "",
            Purpose::ReplaceApp => "?for=replace_app",
        }
    }
}

/// What the session must prove now (`done` when nothing).
pub async fn due() -> Result<StepUp, Failure> {
    due_for(Purpose::Bind).await
}

/// What the session must prove now for `purpose`.
pub async fn due_for(purpose: Purpose) -> Result<StepUp, Failure> {
    api::get::<StepUp>(&format!("/api/account/step-up{}", purpose.query())).await
}

fn has(due: &StepUp, way: &str) -> bool {
    due.ways.iter().any(|w| w == way)
}

#[component]
pub fn StepUpPanel(
    /// What the server said is due.
    due: StepUp,
    /// Everything is proven: the action that asked goes on.
    #[prop(into)]
    on_done: Callback<()>,
    /// The user gave up: back where they came from.
    #[prop(into)]
    on_cancel: Callback<()>,
    /// What the proofs are for.
    #[prop(optional)]
    purpose: Purpose,
) -> impl IntoView {
    let due = RwSignal::new(due);
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<String>);
    // The SMS way: whether a code was sent, and the seconds before another may be.
    let sent = RwSignal::new(false);
    let wait = RwSignal::new(0u64);
    if let Ok(handle) = set_interval_with_handle(move || wait.update(|w| *w = w.saturating_sub(1)), Duration::from_secs(1)) {
        on_cleanup(move || handle.clear());
    }
    // Keyboard and screen-reader users land on the panel.
    let heading = NodeRef::<leptos::html::H2>::new();
    Effect::new(move |_| {
        if let Some(h2) = heading.get() {
            let _ = h2.focus();
        }
    });

    // A user with an app who lost it (replacing it) chose the SMS way.
    let lost = RwSignal::new(false);
    let by_passkey = move || has(&due.get(), "passkey");
    let by_totp = move || has(&due.get(), "totp");
    let by_sms = move || has(&due.get(), "sms");
    // The code to type is the one sent by SMS.
    let by_phone = move || by_sms() && (!by_totp() || lost.get());
    let needs_password = move || due.get().password;
    // The form: the password and/or a code (a passkey alone needs none).
    let has_form = move || needs_password() || by_totp() || by_sms();
    let waiting = move || wait.get() > 0;

    // An answer of the server: done, or what is still due.
    let answered = move |next: StepUp| {
        if next.done {
            on_done.run(());
        } else {
            if !next.password {
                password.set(String::new());
            }
            due.set(next);
        }
    };
    let failed = move |f: Failure| {
        match f.code.as_str() {
            error_code::PASSWORD_INVALID => password.set(String::new()),
            error_code::TOTP_INVALID => code.set(String::new()),
            error_code::STEP_UP_CODE_MISSING => {
                code.set(String::new());
                sent.set(false);
                status.set(None);
            }
            _ => {}
        }
        if let Some(next) = f.step_up() {
            due.set(next);
        }
        error.set(Some(f.message));
    };

    // A proof: a passkey (`None`), or the form's password and/or code.
    let proving = Action::new_local(move |proof: &Option<StepUpProof>| {
        let proof = proof.clone();
        async move {
            let answer = match proof {
                None => api::passkey::step_up(purpose.query()).await,
                Some(proof) => api::post::<StepUpProof, StepUp>(&format!("/api/account/step-up{}", purpose.query()), Some(&proof)).await,
            };
            match answer {
                Ok(next) => answered(next),
                Err(f) => failed(f),
            }
        }
    });
    let sending = Action::new_local(move |_: &()| async move {
        match api::call::<()>("POST", &format!("/api/account/step-up/sms{}", purpose.query()), None).await {
            Ok(()) => {
                sent.set(true);
                lost.set(true);
                code.set(String::new());
                status.set(Some("A code was sent by SMS to your phone.".into()));
            }
            Err(f) if f.code == error_code::STEP_UP_CODE_TOO_SOON => {
                // The code sent a moment ago is still the one to type.
                sent.set(true);
                lost.set(true);
                wait.set(f.retry_after.unwrap_or(30).max(1));
                error.set(Some(f.message));
            }
            Err(f) => failed(f),
        }
    });
    let busy = move || proving.pending().get() || sending.pending().get();
    let busy_now = move || proving.pending().get_untracked() || sending.pending().get_untracked();
    let sms_blocked = move || busy() || wait.get() > 0;

    let with_passkey = move |_| {
        if busy_now() {
            return;
        }
        error.set(None);
        proving.dispatch_local(None);
    };

    let send_sms = move |_| {
        if busy_now() || wait.get_untracked() > 0 {
            return;
        }
        error.set(None);
        sending.dispatch_local(());
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy_now() {
            return;
        }
        let current = due.get_untracked();
        let wants_code = has(&current, "totp") || has(&current, "sms");
        let (typed_password, typed_code) = (password.get_untracked(), code.get_untracked().trim().to_owned());
        let missing = if current.password && typed_password.is_empty() {
            Some("Type your password.")
        } else if by_phone() && !sent.get_untracked() {
            Some("Ask for a code by SMS first.")
        } else if wants_code && typed_code.is_empty() {
            Some("Type the code.")
        } else {
            None
        };
        if let Some(text) = missing {
            error.set(Some(text.into()));
            return;
        }
        let proof = StepUpProof {
            password: current.password.then_some(typed_password),
            code: wants_code.then_some(typed_code),
            by_sms: by_phone(),
        };
        error.set(None);
        proving.dispatch_local(Some(proof));
    };

    view! {
        <section class="step-up" aria-labelledby="step-up-title">
            <h2 id="step-up-title" node_ref=heading tabindex="-1">"Confirm it's you"</h2>
            <p class="muted">{match purpose {
                Purpose::Bind => "This change needs both your factors, proven in the last 5 minutes.",
                Purpose::ReplaceApp => "Replacing your authenticator app needs both your factors, proven in the last 5 minutes. Lost your app? Your password and a code by SMS will do.",
            }}</p>
            <Show when=by_passkey>
                <div class="actions">
                    <button type="button" class="primary" disabled=busy on:click=with_passkey>"Use a passkey"</button>
                </div>
                <Show when=has_form>
                    <p class="muted">"Or:"</p>
                </Show>
            </Show>
            <form on:submit=submit novalidate>
                <Show when=needs_password>
                    <div class="field">
                        <label for="step-up-password">"Password"</label>
                        <input id="step-up-password" type="password" autocomplete="current-password" required
                            prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) />
                    </div>
                </Show>
                <Show when=by_sms>
                    <div class="actions">
                        <button type="button" class="outline" disabled=sms_blocked on:click=send_sms>
                            {move || if sent.get() {
                                "Send me a new code by SMS"
                            } else if by_totp() {
                                "Lost your app? Get a code by SMS"
                            } else {
                                "Send me a code by SMS"
                            }}
                        </button>
                    </div>
                    {move || waiting().then(|| view! {
                        <p class="muted" role="timer">{format!("You can ask for a new code in {} seconds.", wait.get())}</p>
                    })}
                    {move || status.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
                </Show>
                <Show when=move || by_totp() || (by_sms() && sent.get())>
                    <div class="field">
                        <label for="step-up-code">{move || if by_phone() { "Code sent by SMS" } else { "Code from your app" }}</label>
                        <input id="step-up-code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required
                            prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
                    </div>
                </Show>
                {move || error.get().map(|text| view! { <Problem text=text /> })}
                <div class="actions">
                    <Show when=has_form>
                        <button type="submit" class="primary" disabled=busy aria-busy=move || busy().to_string()>
                            {move || if busy() { "Checking…" } else { "Confirm it's me" }}
                        </button>
                    </Show>
                    <button type="button" class="link" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                </div>
            </form>
        </section>
    }
}
