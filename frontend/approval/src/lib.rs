//! The approval page: opened from the SMS link `/sca/{link}`, it shows who
//! asks for what, and lets the user approve with a passkey (creating the
//! first one if needed, then approving with it: one more touch) or deny.
//! Its bundle is the one a phone loads from an SMS: every byte counts
//! (`make test` checks its size, tools/size-budget.mjs).
//!
//! Why the views look the way they do: in Leptos every reactive child or
//! attribute (`move || …` in `view!`, `<Show>`, a component's closures) is
//! a `RenderEffect` over its own view type, and each one monomorphises its
//! own copy of the rendering code (about 1 KB of wasm apiece). So the whole
//! page state is one signal, [`Screen`], and the card is ONE reactive
//! child: plain functions of that state ([`screen_view`]), re-run when the
//! state changes (the timer: once a second). Re-running them does not
//! re-create the DOM: Leptos rebuilds a view of the same type in place
//! (same elements, only the changed texts and attributes written), so the
//! focus, the typed password and the live regions behave as with
//! fine-grained closures; only a change of screen builds new elements.
//! Also measured for size: the screens as an `EitherOf3` (2.5 KB less
//! than `AnyView`s), repeated pieces from one function each (one view
//! type), no `Effect` and no `NodeRef` (1 KB), the password field not
//! bound to a signal (3.5 KB). See docs/BENCHMARKS.md (2026-12-06).

mod api;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys::{HtmlElement, HtmlInputElement};
use shared::{error_code, ActionSummary, ApprovalState, ApprovalView};
use wasm_bindgen::JsCast;

#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(app);
}

/// Everything the page shows: the one signal of the page.
#[derive(Debug)]
enum Screen {
    Loading,
    /// Unknown link.
    Invalid,
    /// The server could not be reached or answered oddly.
    Failed(String),
    Open(Box<Open>),
    /// Decided, used or expired. `just_now`: the user's own decision.
    Closed {
        state: ApprovalState,
        partner: String,
        just_now: bool,
    },
}

/// An approval waiting for the user, and the form's state around it.
#[derive(Debug)]
struct Open {
    link: String,
    /// `has_passkey` is kept up to date by the answers of the server.
    view: ApprovalView,
    busy: Option<Busy>,
    error: Option<String>,
    /// The first passkey was just created here: approving with it is the next step.
    created: bool,
    /// The password field (to create a first passkey) can no longer be used.
    password_locked: bool,
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
        Ok(view) if view.state == ApprovalState::Waiting => {
            Screen::Open(Box::new(Open { link, view, busy: None, error: None, created: false, password_locked: false }))
        }
        Ok(view) => Screen::Closed { state: view.state, partner: view.partner_name, just_now: false },
        Err(e) if e.code == error_code::NOT_FOUND => Screen::Invalid,
        Err(e) => Screen::Failed(e.message),
    };
    screen.set(next);
}

/// Changes the open approval, if the page still shows one (it may have
/// expired or been decided meanwhile), and redraws it if `change` says so.
/// Other screens are left alone: redrawing a result would move the focus.
fn update_open(screen: RwSignal<Screen>, change: impl FnOnce(&mut Open) -> bool) {
    screen.maybe_update(|screen| match screen {
        Screen::Open(open) => change(open),
        _ => false,
    });
}

/// One second of the approval's time: at zero, the link has expired.
fn tick(screen: RwSignal<Screen>) {
    screen.maybe_update(|screen| {
        let Screen::Open(open) = screen else { return false };
        open.view.seconds_left = open.view.seconds_left.saturating_sub(1);
        if open.view.seconds_left == 0 {
            let partner = std::mem::take(&mut open.view.partner_name);
            *screen = Screen::Closed { state: ApprovalState::Expired, partner, just_now: false };
        }
        true
    });
}

/// What the user typed in the password field, asked only to create a
/// first passkey (the link is one factor, the account's password the
/// second). The field is read here rather than bound to a signal (an
/// `input` handler and a `value` property cost 3.5 KB of wasm): it keeps
/// what was typed across redraws, and a new field starts empty.
fn typed_password() -> String {
    document().get_element_by_id("password").map(|field| field.unchecked_into::<HtmlInputElement>().value()).unwrap_or_default()
}

/// A click on Approve or Deny.
fn act(screen: RwSignal<Screen>, what: Busy) {
    let mut start = None;
    update_open(screen, |open| {
        if open.busy.is_some() {
            return false;
        }
        let needs_password = what == Busy::Approve && !open.view.has_passkey;
        let password = if needs_password { typed_password() } else { String::new() };
        if needs_password && password.is_empty() {
            open.error = Some("Enter your Passgate password to create your passkey.".into());
            return true;
        }
        open.busy = Some(what);
        open.error = None;
        start = Some((open.link.clone(), open.view.partner_name.clone(), open.view.has_passkey, password));
        true
    });
    let Some((link, partner, has_passkey, password)) = start else { return };
    spawn_local(async move {
        let result = match what {
            Busy::Deny => api::deny(&link).await,
            Busy::Approve if has_passkey => api::authenticate_and_approve(&link).await,
            Busy::Approve => api::create_passkey(&link, &password).await,
        };
        match result {
            // Created: it signed nothing of the operation yet. Approving
            // with it is one more touch, on a button (Safari asks for a
            // user gesture before each passkey prompt).
            Ok(outcome) if outcome.state == ApprovalState::Waiting => update_open(screen, |open| {
                open.view.has_passkey = true;
                open.created = true;
                open.busy = None;
                true
            }),
            Ok(outcome) => screen.set(Screen::Closed { state: outcome.state, partner, just_now: true }),
            // Decided elsewhere, or ran out meanwhile: show where it stands.
            Err(e) if e.code == error_code::APPROVAL_CLOSED => load(link, screen).await,
            Err(e) => update_open(screen, |open| {
                match e.code.as_str() {
                    error_code::PASSKEY_EXISTS => open.view.has_passkey = true,
                    error_code::NO_PASSKEY => open.view.has_passkey = false,
                    error_code::PASSWORD_LOCKED | error_code::PASSWORD_NOT_SET => open.password_locked = true,
                    _ => {}
                }
                open.error = Some(e.message);
                open.busy = None;
                true
            }),
        }
    });
}

fn app() -> impl IntoView {
    // The server sends this page for `/sca/{link}` only (the root page is
    // frontend/home.html): a path without a link is no approval.
    let link = link_from_location();
    let screen = RwSignal::new(if link.is_empty() { Screen::Invalid } else { Screen::Loading });
    if !link.is_empty() {
        spawn_local(load(link, screen));
        // Ticks for the page's life; it redraws only an open approval.
        set_interval(move || tick(screen), std::time::Duration::from_secs(1));
    }
    view! {
        <main class="page">
            <header class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Passgate"
            </header>
            <section class="card" aria-live="polite">
                {move || screen.with(|current| screen_view(current, screen))}
            </section>
        </main>
    }
}

/// The card's content for the current state (see the module's comment).
fn screen_view(current: &Screen, screen: RwSignal<Screen>) -> impl IntoView {
    use leptos::either::EitherOf3;
    let (ok, title, text) = match current {
        Screen::Loading => return EitherOf3::A(skeleton()),
        Screen::Open(open) => return EitherOf3::B(approval(open, screen)),
        Screen::Invalid => {
            let text = "This approval link is unknown. Open the whole link from the SMS, or ask for a new one.";
            (false, "Link not valid", text.to_owned())
        }
        Screen::Failed(text) => (false, "Something went wrong", text.clone()),
        Screen::Closed { state, partner, just_now } => closed_texts(*state, partner, *just_now),
    };
    EitherOf3::C(outcome(ok, title, text))
}

/// Whether it went well, the title and the text of a decided, used or
/// expired approval.
fn closed_texts(state: ApprovalState, partner: &str, just_now: bool) -> (bool, &'static str, String) {
    match (state, just_now) {
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
    }
}

fn outcome(ok: bool, title: &'static str, text: String) -> impl IntoView {
    // The buttons that had focus are gone: put it on the result, so that
    // keyboard and screen-reader users land on what happened. The task
    // runs once the render under way has put this view in the page.
    spawn_local(async {
        if let Ok(Some(h1)) = document().query_selector(".result h1") {
            let _ = h1.unchecked_into::<HtmlElement>().focus();
        }
    });
    view! {
        <div class=if ok { "result ok" } else { "result bad" }>
            <div class="result-icon" aria-hidden="true">{if ok { "✓" } else { "✕" }}</div>
            <h1 tabindex="-1">{title}</h1>
            <p class="muted">{text}</p>
        </div>
    }
}

fn skeleton() -> impl IntoView {
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

fn details(action: &ActionSummary) -> impl IntoView {
    let is_transfer = action.amount.is_some();
    let amount = action.amount.as_ref().map(|a| format!("{a} {}", action.currency.as_deref().unwrap_or_default()));
    view! {
        <h1>{if is_transfer { "Approve a transfer" } else { "Approve a new beneficiary" }}</h1>
        {amount.map(|a| view! { <p class="amount">{a}</p> })}
        <dl>
            <dt>"To"</dt>
            <dd>{action.payee_name.clone()}</dd>
            <dt>"IBAN"</dt>
            <dd class="iban">{action.iban.clone()}</dd>
            {action.reference.clone().map(|r| view! { <dt>"Reference"</dt><dd>{r}</dd> })}
        </dl>
    }
}

/// The open approval: a plain view of `open`, redrawn in place on each change.
fn approval(open: &Open, screen: RwSignal<Screen>) -> impl IntoView {
    let busy = open.busy;
    let has_passkey = open.view.has_passkey;
    let seconds = open.view.seconds_left;
    let approve_label = match (busy, has_passkey, open.created) {
        (Some(Busy::Approve), ..) => "Waiting for your passkey…",
        (_, true, true) => "Approve with your passkey",
        (_, true, false) => "Approve with passkey",
        (_, false, _) => "Create a passkey and approve",
    };
    let deny_label = if busy == Some(Busy::Deny) { "Denying…" } else { "Deny" };
    let password_disabled = busy.is_some() || open.password_locked;
    view! {
        <p class="muted">{format!("{} asks for your approval", open.view.partner_name)}</p>
        {open.view.action.as_ref().map(details)}
        <p class="timer" role="timer">{format!("Expires in {}", passgate_ui::countdown(seconds))}</p>
        {open.error.clone().map(|text| message("error", "alert", text))}
        {(open.created && open.error.is_none())
            .then(|| message("ready", "status", "Your passkey is ready. Approve with it: one more touch.".to_owned()))}
        {(!has_passkey).then(|| view! {
            <div class="field">
                <label for="password">"Your Passgate password"</label>
                <input
                    id="password"
                    type="password"
                    autocomplete="current-password"
                    aria-describedby="password-why"
                    disabled=password_disabled
                />
                <p id="password-why" class="muted">"Your first passkey also needs your password: the link alone is not enough."</p>
            </div>
        })}
        // `with-spinner`: a busy button's spinner is drawn by style.css from
        // `aria-busy`. Two reactive spinner elements cost 0.7 KB of wasm.
        <div class="actions">
            {action_button(screen, Busy::Approve, "primary with-spinner", busy.is_some() || (!has_passkey && open.password_locked), busy, approve_label)}
            {action_button(screen, Busy::Deny, "secondary with-spinner", busy.is_some(), busy, deny_label)}
        </div>
    }
}

/// The error, or the news that the new passkey is ready: one function, so
/// both share one view type.
fn message(class: &'static str, role: &'static str, text: String) -> impl IntoView {
    view! { <p class=class role=role>{text}</p> }
}

/// Approve or Deny: one function, so both buttons share one view type.
fn action_button(
    screen: RwSignal<Screen>,
    what: Busy,
    class: &'static str,
    disabled: bool,
    busy: Option<Busy>,
    label: &'static str,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class=class
            disabled=disabled
            aria-busy=(busy == Some(what)).to_string()
            on:click=move |_| act(screen, what)
        >
            {label}
        </button>
    }
}
