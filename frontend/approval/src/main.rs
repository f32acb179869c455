//! The approval page: opened from the SMS link `/sca/{link}`, it shows who
//! asks for what, and lets the user approve with a passkey (creating the
//! first one if needed, then approving with it: one more touch) or deny.
//! Its bundle is the one a phone loads from an SMS: every byte counts
//! (`make test` checks its size, tools/size-budget.mjs).

mod api;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{error_code, ActionSummary, ApprovalState, ApprovalView};

fn main() {
    leptos::mount::mount_to_body(App);
}

#[derive(Debug, Clone, PartialEq)]
enum Screen {
    /// Not an approval link: the page at `/`.
    Home,
    Loading,
    /// Unknown link.
    Invalid,
    /// The server could not be reached or answered oddly.
    Failed(String),
    Open(ApprovalView),
    /// Decided, used or expired. `just_now`: the user's own decision.
    Closed {
        state: ApprovalState,
        partner: String,
        just_now: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Approve,
    Deny,
}

fn link_from_location() -> String {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .and_then(|path| path.strip_prefix("/sca/").map(str::to_owned))
        .unwrap_or_default()
}

async fn load(link: String, screen: RwSignal<Screen>) {
    let next = match api::approval(&link).await {
        Ok(view) if view.state == ApprovalState::Waiting => Screen::Open(view),
        Ok(view) => Screen::Closed { state: view.state, partner: view.partner_name, just_now: false },
        Err(e) if e.code == error_code::NOT_FOUND => Screen::Invalid,
        Err(e) => Screen::Failed(e.message),
    };
    screen.set(next);
}

#[component]
fn App() -> impl IntoView {
    let link = link_from_location();
    let screen = RwSignal::new(if link.is_empty() { Screen::Home } else { Screen::Loading });
    if !link.is_empty() {
        spawn_local(load(link.clone(), screen));
    }
    view! {
        <main class="page">
            <header class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Passgate"
            </header>
            <section class="card" aria-live="polite">
                {move || match screen.get() {
                    Screen::Home => view! { <Home /> }.into_any(),
                    Screen::Loading => view! { <Skeleton /> }.into_any(),
                    Screen::Invalid => view! {
                        <Outcome ok=false title="Link not valid"
                            text="This approval link is unknown. Open the whole link from the SMS, or ask for a new one.".to_owned() />
                    }.into_any(),
                    Screen::Failed(text) => view! { <Outcome ok=false title="Something went wrong" text=text /> }.into_any(),
                    Screen::Closed { state, partner, just_now } => closed_view(state, &partner, just_now),
                    Screen::Open(view) => view! { <Approval view=view link=link.clone() screen=screen /> }.into_any(),
                }}
            </section>
        </main>
    }
}

fn closed_view(state: ApprovalState, partner: &str, just_now: bool) -> AnyView {
    let (ok, title, text) = match (state, just_now) {
        (ApprovalState::Allowed, true) => {
            (true, "Approved", format!("You approved the operation. {partner} can now complete it; you may close this page."))
        }
        (ApprovalState::Allowed, false) => {
            (true, "Already approved", format!("This operation is approved. {partner} can now complete it."))
        }
        (ApprovalState::Denied, true) => (false, "Denied", format!("You refused the operation. {partner} cannot complete it.")),
        (ApprovalState::Denied, false) => (false, "Already denied", "This operation was refused. Nothing will happen.".to_owned()),
        (ApprovalState::Used, _) => (true, "Already used", "This approval was already used. There is nothing left to do.".to_owned()),
        (ApprovalState::Expired, _) => (false, "Link expired", format!("This approval ran out of time. Ask {partner} to start again.")),
        (ApprovalState::Waiting, _) => (false, "Something went wrong", "Reload the page to continue.".to_owned()),
    };
    view! { <Outcome ok=ok title=title text=text /> }.into_any()
}

#[component]
fn Outcome(ok: bool, title: &'static str, text: String) -> impl IntoView {
    // The buttons that had focus are gone: put it on the result, so that
    // keyboard and screen-reader users land on what happened.
    let heading = NodeRef::<leptos::html::H1>::new();
    Effect::new(move |_| {
        if let Some(h1) = heading.get() {
            let _ = h1.focus();
        }
    });
    view! {
        <div class="result" class:ok=ok class:bad=!ok>
            <div class="result-icon" aria-hidden="true">{if ok { "✓" } else { "✕" }}</div>
            <h1 node_ref=heading tabindex="-1">{title}</h1>
            <p class="muted">{text}</p>
        </div>
    }
}

#[component]
fn Home() -> impl IntoView {
    view! {
        <h1>"Passgate"</h1>
        <p>"Strong Customer Authentication for sensitive operations. When a partner asks for your approval, "
           "you receive an SMS with a link: it opens the operation here, to approve with a passkey or to deny."</p>
        <p class="muted">"Sandbox: the SMS are kept in the outbox at "<code>"/dev/sms"</code>"; the README walks through a transfer."</p>
    }
}

#[component]
fn Skeleton() -> impl IntoView {
    view! {
        <div aria-busy="true">
            <span class="visually-hidden">"Loading the operation…"</span>
            <div class="skeleton"></div>
            <div class="skeleton big"></div>
            <div class="skeleton"></div>
            <div class="skeleton"></div>
        </div>
    }
}

#[component]
fn Details(action: ActionSummary) -> impl IntoView {
    let is_transfer = action.amount.is_some();
    let amount = action.amount.map(|a| format!("{a} {}", action.currency.unwrap_or_default()));
    view! {
        <h1>{if is_transfer { "Approve a transfer" } else { "Approve a new beneficiary" }}</h1>
        {amount.map(|a| view! { <p class="amount">{a}</p> })}
        <dl>
            <dt>"To"</dt>
            <dd>{action.payee_name}</dd>
            <dt>"IBAN"</dt>
            <dd class="iban">{action.iban}</dd>
            {action.reference.map(|r| view! { <dt>"Reference"</dt><dd>{r}</dd> })}
        </dl>
    }
}

#[component]
fn Approval(view: ApprovalView, link: String, screen: RwSignal<Screen>) -> impl IntoView {
    let busy = RwSignal::new(None::<Busy>);
    let error = RwSignal::new(None::<String>);
    let has_passkey = RwSignal::new(view.has_passkey);
    // The first passkey was just created here: approving with it is the next step.
    let created = RwSignal::new(false);
    // Asked only to create a first passkey: the link is one factor, the
    // account's password the second.
    let password = RwSignal::new(String::new());
    let password_locked = RwSignal::new(false);
    let seconds = RwSignal::new(view.seconds_left);
    let partner = view.partner_name.clone();

    let expire_partner = partner.clone();
    if let Ok(handle) = set_interval_with_handle(
        move || {
            let left = seconds.get_untracked().saturating_sub(1);
            seconds.set(left);
            if left == 0 {
                screen.set(Screen::Closed { state: ApprovalState::Expired, partner: expire_partner.clone(), just_now: false });
            }
        },
        Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }

    let act = move |what: Busy| {
        if busy.get_untracked().is_some() {
            return;
        }
        if what == Busy::Approve && !has_passkey.get_untracked() && password.with_untracked(String::is_empty) {
            error.set(Some("Enter your Passgate password to create your passkey.".into()));
            return;
        }
        busy.set(Some(what));
        error.set(None);
        let (link, partner) = (link.clone(), partner.clone());
        spawn_local(async move {
            let result = match what {
                Busy::Deny => api::deny(&link).await,
                Busy::Approve if has_passkey.get_untracked() => api::authenticate_and_approve(&link).await,
                Busy::Approve => api::create_passkey(&link, &password.get_untracked()).await,
            };
            match result {
                // Created: it signed nothing of the operation yet. Approving
                // with it is one more touch, on a button (Safari asks for a
                // user gesture before each passkey prompt).
                Ok(outcome) if outcome.state == ApprovalState::Waiting => {
                    has_passkey.set(true);
                    created.set(true);
                    password.set(String::new());
                    busy.set(None);
                }
                Ok(outcome) => screen.set(Screen::Closed { state: outcome.state, partner, just_now: true }),
                // Decided elsewhere, or ran out meanwhile: show where it stands.
                Err(e) if e.code == error_code::APPROVAL_CLOSED => load(link, screen).await,
                Err(e) => {
                    match e.code.as_str() {
                        error_code::PASSKEY_EXISTS => has_passkey.set(true),
                        error_code::NO_PASSKEY => has_passkey.set(false),
                        error_code::PASSWORD_LOCKED | error_code::PASSWORD_NOT_SET => password_locked.set(true),
                        _ => {}
                    }
                    error.set(Some(e.message));
                    busy.set(None);
                }
            }
        });
    };
    let deny = act.clone();

    view! {
        <p class="muted">{format!("{} asks for your approval", view.partner_name)}</p>
        {view.action.map(|action| view! { <Details action=action /> })}
        <p class="timer" role="timer">
            {move || {
                let s = seconds.get();
                format!("Expires in {}:{:02}", s / 60, s % 60)
            }}
        </p>
        {move || error.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
        {move || (created.get() && error.get().is_none()).then(|| view! {
            <p class="ready" role="status">"Your passkey is ready. Approve with it: one more touch."</p>
        })}
        {move || (!has_passkey.get()).then(|| view! {
            <div class="field">
                <label for="password">"Your Passgate password"</label>
                <input
                    id="password"
                    type="password"
                    autocomplete="current-password"
                    aria-describedby="password-why"
                    disabled=move || busy.get().is_some() || password_locked.get()
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))
                />
                <p id="password-why" class="muted">"Your first passkey also needs your password: the link alone is not enough."</p>
            </div>
        })}
        // `with-spinner`: a busy button's spinner is drawn by style.css from
        // `aria-busy`. Two reactive spinner elements cost 0.7 KB of wasm.
        <div class="actions">
            <button
                type="button"
                class="primary with-spinner"
                disabled=move || busy.get().is_some() || (!has_passkey.get() && password_locked.get())
                aria-busy=move || (busy.get() == Some(Busy::Approve)).to_string()
                on:click=move |_| act(Busy::Approve)
            >
                {move || match (busy.get(), has_passkey.get(), created.get()) {
                    (Some(Busy::Approve), ..) => "Waiting for your passkey…",
                    (_, true, true) => "Approve with your passkey",
                    (_, true, false) => "Approve with passkey",
                    (_, false, _) => "Create a passkey and approve",
                }}
            </button>
            <button
                type="button"
                class="secondary with-spinner"
                disabled=move || busy.get().is_some()
                aria-busy=move || (busy.get() == Some(Busy::Deny)).to_string()
                on:click=move |_| deny(Busy::Deny)
            >
                {move || if busy.get() == Some(Busy::Deny) { "Denying…" } else { "Deny" }}
            </button>
        </div>
    }
}
