//! The approvals waiting for this phone: the list, live over server-sent
//! events (`GET /device/api/events`: each event is the whole list), and
//! one approval with what it does, its countdown, and the three answers.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use shared::{ActionSummary, ApprovalState, PhoneApproval};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use crate::notifications::{support, Support};
use passgate_ui::countdown;

use crate::{api, Failed, Loading};

/// The list as the server last sent it; `None` until its first event.
#[component]
pub fn Waiting(notifications: bool, #[prop(into)] on_unpaired: Callback<()>) -> impl IntoView {
    let list = RwSignal::new(None::<Vec<PhoneApproval>>);
    let broken = RwSignal::new(false);
    let stream = StoredValue::new_local(None);
    if let Ok(source) = EventSource::new("/device/api/events") {
        let changed = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let approvals = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok());
            broken.set(approvals.is_none());
            if approvals.is_some() {
                list.set(approvals);
            }
        });
        // The browser reconnects by itself; a stream it gave up (the
        // answer was not a stream) means the pairing ended, or the server
        // fails: the pairing is read again, after a pause so that a
        // failing server is not asked in a loop.
        let failed = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
            let closed =
                event.target().and_then(|t| t.dyn_into::<EventSource>().ok()).is_some_and(|s| s.ready_state() == EventSource::CLOSED);
            if closed {
                set_timeout(move || on_unpaired.run(()), Duration::from_secs(3));
            }
        });
        let _ = source.add_event_listener_with_callback("approvals", changed.as_ref().unchecked_ref());
        source.set_onerror(Some(failed.as_ref().unchecked_ref()));
        stream.set_value(Some((source, changed, failed)));
    }
    on_cleanup(move || {
        if let Some((source, _, _)) = stream.try_update_value(Option::take).flatten() {
            source.close();
        }
    });
    let ask_notifications = !notifications && support() != Support::Missing;
    view! {
        <Confirmations />
        <section class="card">
            <h1>"Approvals"</h1>
            {ask_notifications.then(|| view! {
                <p class="notice">"Notifications are off: approvals show only while the app is open. " <A href="/device/settings">"Turn them on"</A></p>
            })}
            <Show when=move || broken.get()>
                <p class="error" role="alert">"Passgate sent a list this app cannot read. Reload the app."</p>
            </Show>
            {move || match list.get() {
                None => view! { <p role="status" class="muted">"Loading your approvals…"</p> }.into_any(),
                Some(approvals) if approvals.is_empty() => view! {
                    <p role="status" class="empty">"Nothing waits for you. When a payment needs your approval, it shows here."</p>
                }.into_any(),
                Some(approvals) => view! {
                    <p role="status" class="visually-hidden">{format!("{} waiting", approvals.len())}</p>
                    <ul class="approvals">
                        {approvals.into_iter().map(|approval| view! { <Item approval /> }).collect_view()}
                    </ul>
                }.into_any(),
            }}
            <nav class="footer-nav"><A href="/device/settings">"Settings"</A></nav>
        </section>
    }
}

/// What the account area asks this phone to confirm: a sign-in on
/// another browser, or a new phone in this one's place. Read again when
/// the service worker passes a push on, when the app comes back to the
/// front, and every 5 seconds while it is open.
#[component]
fn Confirmations() -> impl IntoView {
    let waiting = LocalResource::new(api::confirmations);
    let answering = Action::new_local(|(id, replacing, allow): &(String, bool, bool)| {
        let (id, said) = (id.clone(), answered(*replacing, *allow));
        let allow = *allow;
        async move { api::answer_confirmation(&id, allow).await.map(|_| (allow, said)) }
    });
    // The last answer's outcome, until something new waits.
    let said = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(answered) = answering.value().get() {
            said.set(Some(answered));
            waiting.refetch();
        }
    });
    Effect::new(move |_| {
        if waiting.get().and_then(Result::ok).is_some_and(|asked| !asked.is_empty()) {
            said.set(None);
        }
    });
    let listeners = StoredValue::new_local(None);
    if let Some(window) = web_sys::window() {
        let again = Closure::<dyn Fn()>::new(move || waiting.refetch());
        let workers = window.navigator().service_worker();
        let _ = workers.add_event_listener_with_callback("message", again.as_ref().unchecked_ref());
        let _ = window.add_event_listener_with_callback("focus", again.as_ref().unchecked_ref());
        let every = window.set_interval_with_callback_and_timeout_and_arguments_0(again.as_ref().unchecked_ref(), 5_000).ok();
        listeners.set_value(Some((window, workers, again, every)));
    }
    on_cleanup(move || {
        if let Some((window, workers, again, every)) = listeners.try_update_value(Option::take).flatten() {
            let _ = workers.remove_event_listener_with_callback("message", again.as_ref().unchecked_ref());
            let _ = window.remove_event_listener_with_callback("focus", again.as_ref().unchecked_ref());
            if let Some(every) = every {
                window.clear_interval_with_handle(every);
            }
        }
    });
    let busy = move || answering.pending().get();
    view! {
        {move || said.get().map(|answered| match answered {
            Ok((true, said)) => view! { <p class="ready" role="status">{said}</p> }.into_any(),
            Ok((false, said)) => view! { <p class="notice" role="status">{said}</p> }.into_any(),
            Err(failure) => view! { <p class="error" role="alert">{failure.message}</p> }.into_any(),
        })}
        {move || waiting.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|asked| {
            let (allow_id, deny_id) = (asked.id.clone(), asked.id.clone());
            let replacing = asked.purpose == "replace_phone";
            let title = if replacing { "Allow a new phone in place of this one?" } else { "Confirm a sign-in to your account?" };
            let from = match &asked.ip {
                Some(ip) => format!("From {} ({ip})", asked.browser),
                None => format!("From {}", asked.browser),
            };
            view! {
                <section class="card confirmation" aria-label=title>
                    <h2>{title}</h2>
                    <p>{from}</p>
                    <p class="muted small">"Only if it is you, right now."</p>
                    <div class="actions">
                        <button class="primary" disabled=busy on:click=move |_| { answering.dispatch_local((allow_id.clone(), replacing, true)); }>"Allow"</button>
                        <button class="secondary" disabled=busy on:click=move |_| { answering.dispatch_local((deny_id.clone(), replacing, false)); }>"Refuse"</button>
                    </div>
                </section>
            }
        }).collect_view()}
    }
}

/// What the phone says once it answered a confirmation.
fn answered(replacing: bool, allow: bool) -> &'static str {
    match (replacing, allow) {
        (true, true) => "Allowed: the new phone can pair now. This one stops approving once it has.",
        (false, true) => "Allowed: the sign-in goes on.",
        (_, false) => "Refused. Whoever asked has your password: change it on your account's security page.",
    }
}

#[component]
fn Item(approval: PhoneApproval) -> impl IntoView {
    let href = format!("/device/approvals/{}", approval.id);
    view! {
        <li>
            <A href=href>
                <span class="item-title">{title(&approval.action)}</span>
                <span class="item-detail">{amount(&approval.action).unwrap_or_default()} " · " {approval.partner_name}</span>
            </A>
        </li>
    }
}

/// "Payment to ACME SAS", "New payee: ACME SAS".
fn title(action: &ActionSummary) -> String {
    match action.action_type.as_str() {
        "beneficiary.create" => format!("New payee: {}", action.payee_name),
        _ => format!("Payment to {}", action.payee_name),
    }
}

fn amount(action: &ActionSummary) -> Option<String> {
    let amount = action.amount.as_deref()?;
    Some(match &action.currency {
        Some(currency) => format!("{amount} {currency}"),
        None => amount.to_owned(),
    })
}

/// What the user answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    Deny,
    Report,
}

/// One approval, opened from the list or a notification.
#[component]
pub fn ApprovalScreen() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let approval = LocalResource::new(move || {
        let id = id();
        async move { api::approval(&id).await }
    });
    view! {
        {move || match approval.get() {
            None => view! { <Loading what="Loading the approval" /> }.into_any(),
            Some(Err(failure)) if failure.code == shared::error_code::NOT_FOUND => view! { <Gone /> }.into_any(),
            Some(Err(failure)) if failure.code == shared::error_code::PHONE_NOT_PAIRED => view! { <NotPaired /> }.into_any(),
            Some(Err(failure)) => view! { <Failed failure retry=move || approval.refetch() /> }.into_any(),
            Some(Ok(approval)) => view! { <Decide approval /> }.into_any(),
        }}
    }
}

#[component]
fn Decide(approval: PhoneApproval) -> impl IntoView {
    let left = RwSignal::new(approval.seconds_left);
    if let Ok(handle) = set_interval_with_handle(move || left.update(|s| *s = s.saturating_sub(1)), Duration::from_secs(1)) {
        on_cleanup(move || handle.clear());
    }
    let id = approval.id.clone();
    let answering = Action::new_local(move |answer: &Answer| {
        let (id, answer) = (id.clone(), *answer);
        async move {
            match answer {
                Answer::Approve => api::approve(&id).await,
                Answer::Deny => api::deny(&id, false).await,
                Answer::Report => api::deny(&id, true).await,
            }
            .map(|outcome| (answer, outcome.state))
        }
    });
    let busy = move || answering.pending().get();
    let running = move |answer: Answer| answering.input().get() == Some(answer) && busy();
    let partner = approval.partner_name.clone();
    let action = approval.action.clone();
    view! {
        {move || match answering.value().get() {
            Some(Ok((answer, state))) => view! { <Outcome answer state partner=partner.clone() /> }.into_any(),
            Some(Err(failure)) if failure.code == shared::error_code::NOT_FOUND => view! { <Gone /> }.into_any(),
            failed => {
                let failure = failed.and_then(Result::err);
                let action = action.clone();
                let partner = partner.clone();
                view! {
                    <section class="card">
                        <h1>{title(&action)}</h1>
                        <p class="muted">{partner} " asks you to confirm"</p>
                        {amount(&action).map(|amount| view! { <p class="amount">{amount}</p> })}
                        <dl>
                            <dt>"Payee"</dt><dd>{action.payee_name.clone()}</dd>
                            <dt>"IBAN"</dt><dd class="iban">{action.iban.clone()}</dd>
                            {action.reference.clone().map(|reference| view! { <dt>"Reference"</dt><dd>{reference}</dd> })}
                        </dl>
                        <p class="timer" role="timer" aria-live="off">
                            {move || if left.get() == 0 { "This request has run out".to_owned() } else { format!("Answer within {}", countdown(left.get())) }}
                        </p>
                        {failure.map(|f| view! { <p class="error" role="alert">{f.message}</p> })}
                        <div class="actions">
                            <button class="primary" disabled=move || busy() || left.get() == 0 on:click=move |_| { answering.dispatch_local(Answer::Approve); }>
                                {move || if running(Answer::Approve) { "Confirm with your screen lock…" } else { "Approve" }}
                            </button>
                            <button class="secondary" disabled=busy on:click=move |_| { answering.dispatch_local(Answer::Deny); }>
                                {move || if running(Answer::Deny) { "Denying…" } else { "Deny" }}
                            </button>
                            <button class="link danger" disabled=busy on:click=move |_| { answering.dispatch_local(Answer::Report); }>
                                {move || if running(Answer::Report) { "Reporting…" } else { "This wasn't me" }}
                            </button>
                        </div>
                        <nav class="footer-nav"><A href="/device">"Back to approvals"</A></nav>
                    </section>
                }.into_any()
            }
        }}
    }
}

#[component]
fn Outcome(answer: Answer, state: ApprovalState, partner: String) -> impl IntoView {
    let (ok, title, detail) = match (answer, state) {
        (_, ApprovalState::Allowed) => (true, "Approved".to_owned(), format!("{partner} can go ahead.")),
        (Answer::Report, _) => (
            false,
            "Refused and reported".to_owned(),
            "Nothing was done. We told your bank this was not you: check your account's security page, and change your password if someone may know it.".to_owned(),
        ),
        _ => (false, "Denied".to_owned(), format!("Nothing was done: {partner} was told you refused.")),
    };
    // The buttons are gone: keyboard and screen-reader users land on the outcome.
    let heading = NodeRef::<leptos::html::H1>::new();
    Effect::new(move |_| {
        if let Some(h1) = heading.get() {
            let _ = h1.focus();
        }
    });
    view! {
        <section class="card result" class:ok=ok class:bad=!ok>
            <div class="result-icon" aria-hidden="true">{if ok { "✓" } else { "✕" }}</div>
            <h1 tabindex="-1" node_ref=heading>{title}</h1>
            <p role="status">{detail}</p>
            <nav class="footer-nav"><A href="/device">"Back to approvals"</A></nav>
        </section>
    }
}

/// Answered elsewhere, run out, or never this phone's: all read the same.
#[component]
fn Gone() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Nothing to approve here"</h1>
            <p role="status">"This request no longer waits: it was answered, it ran out, or it is not for this phone."</p>
            <nav class="footer-nav"><A href="/device">"Back to approvals"</A></nav>
        </section>
    }
}

#[component]
fn NotPaired() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"This phone is not paired"</h1>
            <p role="status">"Pair it again to approve from it."</p>
            <nav class="footer-nav"><A href="/device">"Pair this phone"</A></nav>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(action_type: &str, amount: Option<&str>) -> ActionSummary {
        ActionSummary {
            action_type: action_type.into(),
            amount: amount.map(Into::into),
            currency: amount.map(|_| "EUR".into()),
            payee_name: "ACME SAS".into(),
            iban: "FR76 3000 6000 0112 3456 7890 189".into(),
            reference: None,
        }
    }

    #[test]
    fn a_transfer_and_a_new_payee_are_named_for_what_they_do() {
        assert_eq!(title(&action("transfer.single.create", Some("1,200.00"))), "Payment to ACME SAS");
        assert_eq!(amount(&action("transfer.single.create", Some("1,200.00"))).as_deref(), Some("1,200.00 EUR"));
        assert_eq!(title(&action("beneficiary.create", None)), "New payee: ACME SAS");
        assert_eq!(amount(&action("beneficiary.create", None)), None);
    }
}
