//! The phone app, `/device`: installable (a manifest, a service worker that
//! keeps the app shell and shows pushes), made for one hand.
//!
//! - Not paired: sign in (the account area's own sign-in, which sends the
//!   user back here), pair with the password and a code by SMS, create the
//!   phone's passkey, then turn on notifications.
//! - Paired: the approvals waiting, live (server-sent events); one
//!   approval with what it does and its countdown, approved with the
//!   phone's passkey, denied, or reported ("This wasn't me"); settings.
//!
//! Loading goes through resources, submitting through actions: each screen
//! shows its loading and its error state.

mod api;
mod approvals;
mod notifications;
mod pairing;
mod settings;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

fn main() {
    notifications::register_worker();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
            <main class="page device">
                <header class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Passgate"
                </header>
                <Offline />
                <Routes fallback=|| view! { <Home /> }>
                    <Route path=path!("/device") view=Home />
                    <Route path=path!("/device/approvals/:id") view=approvals::ApprovalScreen />
                    <Route path=path!("/device/settings") view=settings::Settings />
                </Routes>
            </main>
        </Router>
    }
}

/// Paired: the approvals; not paired: the pairing.
#[component]
fn Home() -> impl IntoView {
    let phone = LocalResource::new(api::this_phone);
    view! {
        {move || match phone.get() {
            None => view! { <Loading what="Checking this phone" /> }.into_any(),
            Some(Err(failure)) => view! { <Failed failure retry=move || phone.refetch() /> }.into_any(),
            Some(Ok(None)) => view! { <pairing::Pairing on_paired=move || phone.refetch() /> }.into_any(),
            Some(Ok(Some(paired))) => {
                view! { <approvals::Waiting notifications=paired.notifications on_unpaired=move || phone.refetch() /> }.into_any()
            }
        }}
    }
}

/// A screen still loading, said to screen readers too.
#[component]
fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <section class="card" aria-busy="true">
            <p role="status" class="visually-hidden">{what}"…"</p>
            <div class="skeleton big"></div>
            <div class="skeleton"></div>
            <div class="skeleton"></div>
        </section>
    }
}

/// A screen that could not load, and a way to try again.
#[component]
fn Failed(failure: passgate_ui::Failure, #[prop(into)] retry: Callback<()>) -> impl IntoView {
    let heading = if failure.not_reached() { "You are offline" } else { "Something went wrong" };
    view! {
        <section class="card">
            <h1>{heading}</h1>
            <p class="error" role="alert">{failure.message}</p>
            <div class="actions">
                <button class="primary" on:click=move |_| retry.run(())>"Try again"</button>
            </div>
        </section>
    }
}

/// "You are offline", while the browser says so.
#[component]
fn Offline() -> impl IntoView {
    let online = RwSignal::new(web_sys::window().is_none_or(|w| w.navigator().on_line()));
    let listeners = StoredValue::new_local(Vec::new());
    if let Some(window) = web_sys::window() {
        for (event, now) in [("online", true), ("offline", false)] {
            let changed = Closure::<dyn Fn()>::new(move || online.set(now));
            if window.add_event_listener_with_callback(event, changed.as_ref().unchecked_ref()).is_ok() {
                listeners.update_value(|l| l.push((event, changed)));
            }
        }
    }
    on_cleanup(move || {
        let (Some(window), Some(listeners)) = (web_sys::window(), listeners.try_update_value(std::mem::take)) else { return };
        for (event, changed) in listeners {
            let _ = window.remove_event_listener_with_callback(event, changed.as_ref().unchecked_ref());
        }
    });
    view! {
        <Show when=move || !online.get()>
            <p class="offline" role="status">
                "You are offline. Approvals need a connection: they show again as soon as you are back online."
            </p>
        </Show>
    }
}
