//! Notifications: the service worker, the browser's permission (asked only
//! when the user taps "Turn on notifications"), and the Web Push
//! subscription kept by the server.
//!
//! A browser's `subscribe()` can hang (no push service reachable, a
//! headless browser): it gets a timeout, and the screen says what
//! happened instead of waiting forever.

use js_sys::{Array, Promise, Reflect};
use leptos::prelude::*;
use passgate_ui::Failure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Notification, NotificationPermission, PushSubscriptionOptionsInit, ServiceWorkerContainer, ServiceWorkerRegistration};

use crate::api;

/// How long the browser may take to subscribe.
const SUBSCRIBE_MS: i32 = 15_000;

/// Registers the app's service worker (the app shell offline, pushes shown).
pub fn register_worker() {
    let Some(workers) = workers() else { return };
    let options = web_sys::RegistrationOptions::new();
    options.set_scope("/device");
    // A failure leaves the app working while open; nothing to tell.
    let _ = workers.register_with_options("/device/sw.js", &options);
}

fn workers() -> Option<ServiceWorkerContainer> {
    let window = web_sys::window()?;
    let navigator = window.navigator();
    // `navigator.serviceWorker` is missing where workers are not allowed.
    Reflect::has(&navigator, &"serviceWorker".into()).ok()?.then(|| navigator.service_worker())
}

/// Where notifications stand in this browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The browser has no Web Push (some need the app on the home screen).
    Missing,
    /// Not asked yet.
    Ask,
    Granted,
    /// Refused: only the browser's settings can turn them on again.
    Refused,
}

pub fn support() -> Support {
    let Some(window) = web_sys::window() else { return Support::Missing };
    let has = |name: &str| Reflect::has(&window, &name.into()).unwrap_or(false);
    if !has("Notification") || !has("PushManager") || workers().is_none() {
        return Support::Missing;
    }
    match Notification::permission() {
        NotificationPermission::Granted => Support::Granted,
        NotificationPermission::Denied => Support::Refused,
        _ => Support::Ask,
    }
}

/// Asks the permission, subscribes and has the server keep the
/// subscription. `Ok(false)`: the user refused.
pub async fn turn_on() -> Result<bool, Failure> {
    let Some(key) = api::push_key().await? else {
        return Err(Failure::local("This Passgate server sends no notifications: keep the app open to see approvals."));
    };
    let asked = Notification::request_permission().map_err(|_| Failure::local("Your browser cannot show notifications."))?;
    let answer = JsFuture::from(asked).await.ok().and_then(|v| v.as_string()).unwrap_or_default();
    if answer != "granted" {
        return Ok(false);
    }
    let registration = ready().await?;
    let options = PushSubscriptionOptionsInit::new();
    options.set_user_visible_only(true);
    // The push service checks our pushes against this key (base64url, as
    // the Push API takes it).
    options.set_application_server_key(&JsValue::from_str(&key));
    let manager = registration.push_manager().map_err(|_| Failure::local("Your browser has no push service."))?;
    let subscribing = manager.subscribe_with_options(&options).map_err(|_| Failure::local("Your browser refused to subscribe."))?;
    let subscription = within(subscribing, SUBSCRIBE_MS)
        .await
        .map_err(|_| Failure::local("Your browser could not reach its push service. Check your connection, or try again later."))?;
    let Some(subscription) = subscription else {
        return Err(Failure::local(
            "Your browser's push service did not answer in time. Approvals still show while the app is open; try again later.",
        ));
    };
    api::subscribe(&subscription).await?;
    Ok(true)
}

/// Notifications off: the browser forgets the subscription, the server too.
pub async fn turn_off() -> Result<(), Failure> {
    // The browser's side first; whatever it says, the server forgets it.
    if let Some(subscription) = subscription().await {
        if let Ok(unsubscribing) = subscription.unsubscribe() {
            let _ = JsFuture::from(unsubscribing).await;
        }
    }
    api::unsubscribe().await
}

/// The browser's subscription, if it has one.
async fn subscription() -> Option<web_sys::PushSubscription> {
    let manager = ready().await.ok()?.push_manager().ok()?;
    let found = JsFuture::from(manager.get_subscription().ok()?).await.ok()?;
    found.dyn_into().ok()
}

/// The service worker's registration, once active.
async fn ready() -> Result<ServiceWorkerRegistration, Failure> {
    let unavailable = || Failure::local("The app's service worker is not running: reload the app and try again.");
    let ready = workers().ok_or_else(unavailable)?.ready().map_err(|_| unavailable())?;
    let registration = within(ready, SUBSCRIBE_MS).await.map_err(|_| unavailable())?.ok_or_else(unavailable)?;
    registration.dyn_into().map_err(|_| unavailable())
}

/// `promise`'s value, or `None` after `ms` milliseconds.
async fn within(promise: Promise, ms: i32) -> Result<Option<JsValue>, JsValue> {
    let late = JsValue::from_str("passgate: too late");
    let marker = late.clone();
    let timer = Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_1(&resolve, ms, &marker);
        }
    });
    let first = JsFuture::from(Promise::race(&Array::of2(&promise, &timer))).await?;
    Ok((first != late).then_some(first))
}

/// The notifications panel after pairing and in the settings: its state,
/// and the one tap that asks the browser.
#[component]
pub fn NotificationsPanel(
    /// Whether the server holds a live subscription for this phone.
    on: bool,
    /// Done: on, refused, or skipped.
    #[prop(optional, into)]
    on_done: Option<Callback<()>>,
) -> impl IntoView {
    let on = RwSignal::new(on);
    let support = RwSignal::new(support());
    let turning_on = Action::new_local(|_: &()| turn_on());
    let turning_off = Action::new_local(|_: &()| turn_off());
    Effect::new(move |_| match turning_on.value().get() {
        Some(Ok(true)) => {
            on.set(true);
            support.set(Support::Granted);
        }
        Some(Ok(false)) => support.set(self::support()),
        _ => {}
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = turning_off.value().get() {
            on.set(false);
        }
    });
    let failure = move || match (turning_on.value().get(), turning_off.value().get()) {
        (Some(Err(f)), _) | (_, Some(Err(f))) => Some(f.message),
        _ => None,
    };
    let busy = move || turning_on.pending().get() || turning_off.pending().get();
    view! {
        <section class="notifications" aria-labelledby="notifications-title">
            <h2 id="notifications-title">"Notifications"</h2>
            {move || match (on.get(), support.get()) {
                (true, _) => view! {
                    <p class="ready">"On: approvals reach this phone even when the app is closed."</p>
                }.into_any(),
                (false, Support::Missing) => view! {
                    <p>"This browser cannot show notifications here. On an iPhone, add Passgate to your home screen first (Share, then Add to Home Screen). Approvals still show while the app is open."</p>
                }.into_any(),
                (false, Support::Refused) => view! {
                    <p>"Notifications are blocked for this site. To turn them on, open your browser's site settings for Passgate and allow notifications. Approvals still show while the app is open."</p>
                }.into_any(),
                (false, _) => view! {
                    <p>"Get approvals as notifications, even when the app is closed. Your browser asks you once."</p>
                }.into_any(),
            }}
            {move || failure().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <div class="actions">
                <Show when=move || !on.get() && matches!(support.get(), Support::Ask | Support::Granted)>
                    <button class="primary" disabled=busy on:click=move |_| { turning_on.dispatch_local(()); }>
                        {move || if turning_on.pending().get() { "Turning on…" } else { "Turn on notifications" }}
                    </button>
                </Show>
                <Show when=move || on.get()>
                    <button class="secondary" disabled=busy on:click=move |_| { turning_off.dispatch_local(()); }>
                        {move || if turning_off.pending().get() { "Turning off…" } else { "Turn off notifications" }}
                    </button>
                </Show>
                {on_done.map(|done| view! {
                    <button class="link" on:click=move |_| done.run(())>
                        {move || if on.get() { "Continue" } else { "Not now" }}
                    </button>
                })}
            </div>
        </section>
    }
}
