//! Recovery codes: shown once when an authenticator app is set up, and
//! made anew by the user (the old ones stop working) after confirming
//! it's them, as every change of a factor asks.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use shared::{RecoveryCodes, StepUp};

use super::step_up::{self, StepUpPanel};
use super::{api, Problem};

/// Recovery codes to write down, with what they are for.
#[component]
pub fn RecoveryCodeList(codes: Vec<String>) -> impl IntoView {
    view! {
        <h2>"Recovery codes"</h2>
        <p>"Keep these somewhere safe: each signs you in once if you lose your phone. They are shown only now."</p>
        <ul class="codes" data-testid="recovery-codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
    }
}

/// What asking for new codes came to.
#[derive(Clone, PartialEq)]
enum Renewed {
    /// Confirm it's the user first, then ask again.
    Confirming(StepUp),
    Done(Vec<String>),
}

#[derive(Clone, PartialEq)]
enum Renewal {
    /// Saying what happens, before anything changes.
    Asking,
    Working,
    Confirming(StepUp),
    Done(Vec<String>),
}

/// `/account/security/recovery-codes`: ten new codes for old ones.
#[component]
pub fn RecoveryCodesPage() -> impl IntoView {
    let navigate = use_navigate();
    let renewing = Action::new_local(|_: &()| async {
        let due = step_up::due().await?;
        if !due.done {
            return Ok(Renewed::Confirming(due));
        }
        match api::post::<(), RecoveryCodes>("/api/account/recovery-codes", None).await {
            Ok(done) => Ok(Renewed::Done(done.recovery_codes)),
            // The proof grew old meanwhile: confirm again, then it goes on.
            Err(f) => f.step_up().map(Renewed::Confirming).ok_or(f),
        }
    });
    let state = Memo::new(move |_| {
        if renewing.pending().get() {
            return Renewal::Working;
        }
        match renewing.value().get() {
            None | Some(Err(_)) => Renewal::Asking,
            Some(Ok(Renewed::Confirming(due))) => Renewal::Confirming(due),
            Some(Ok(Renewed::Done(codes))) => Renewal::Done(codes),
        }
    });
    // What went wrong, until the user asks again.
    let error = move || {
        if renewing.pending().get() {
            return None;
        }
        renewing.value().with(|answer| answer.as_ref().and_then(|a| a.as_ref().err()).map(|f| f.message.clone()))
    };
    let renew = move || {
        renewing.dispatch_local(());
    };
    let back = move || navigate("/account/security", NavigateOptions::default());
    let (back_cancel, back_done) = (back.clone(), back);
    view! {
        <section class="card">
            <h1>"New recovery codes"</h1>
            {move || match state.get() {
                Renewal::Asking | Renewal::Working => view! {
                    <p>"Ten new codes replace the ones you have: the old codes stop working at once, used or not."</p>
                    {move || error().map(|text| view! { <Problem text=text /> })}
                    <div class="actions">
                        <button type="button" class="primary" disabled=move || state.get() == Renewal::Working on:click=move |_| renew()>
                            "Make new codes"
                        </button>
                        <A href="/account/security" attr:class="button outline">"Cancel"</A>
                    </div>
                }.into_any(),
                Renewal::Confirming(due) => view! {
                    <StepUpPanel due=due on_done=move || renew() on_cancel={
                        let back = back_cancel.clone();
                        move || back()
                    } />
                }.into_any(),
                Renewal::Done(codes) => view! {
                    <p class="notice" role="status">"Your new recovery codes are ready; the old ones no longer work."</p>
                    <RecoveryCodeList codes=codes />
                    <div class="actions">
                        <button type="button" class="primary" on:click={
                            let back = back_done.clone();
                            move |_| back()
                        }>"I saved them"</button>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}
