//! Settings: this phone's pairing, its notifications, and unpairing.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::notifications::NotificationsPanel;
use crate::{api, Failed, Loading};

#[component]
pub fn Settings() -> impl IntoView {
    let phone = LocalResource::new(api::this_phone);
    let unpairing = Action::new_local(|_: &()| api::unpair());
    let confirming = RwSignal::new(false);
    view! {
        {move || match (unpairing.value().get(), phone.get()) {
            (Some(Ok(())), _) | (_, Some(Ok(None))) => view! {
                <section class="card">
                    <h1>"This phone is not paired"</h1>
                    <p role="status">"Approvals no longer come to this phone. You can pair it again at any time."</p>
                    <nav class="footer-nav"><A href="/device">"Pair this phone"</A></nav>
                </section>
            }.into_any(),
            (_, None) => view! { <Loading what="Loading the settings" /> }.into_any(),
            (_, Some(Err(failure))) => view! { <Failed failure retry=move || phone.refetch() /> }.into_any(),
            (failed, Some(Ok(Some(paired)))) => view! {
                <section class="card">
                    <h1>"Settings"</h1>
                    <dl>
                        <dt>"Paired"</dt><dd>{day(&paired.paired_at)}</dd>
                        <dt>"Last used"</dt><dd>{paired.last_used_at.as_deref().map_or_else(|| "Not yet".to_owned(), day)}</dd>
                    </dl>
                    <NotificationsPanel on=paired.notifications />
                    <section aria-labelledby="unpair-title">
                        <h2 id="unpair-title">"Unpair this phone"</h2>
                        <p>"Approvals will go back to SMS links. This phone's passkey stops working for your account."</p>
                        {failed.and_then(Result::err).map(|f| view! { <p class="error" role="alert">{f.message}</p> })}
                        <div class="actions">
                            <Show
                                when=move || confirming.get()
                                fallback=move || view! {
                                    <button class="secondary" on:click=move |_| confirming.set(true)>"Unpair this phone"</button>
                                }
                            >
                                <button class="secondary" disabled=move || unpairing.pending().get() on:click=move |_| { unpairing.dispatch_local(()); }>
                                    {move || if unpairing.pending().get() { "Unpairing…" } else { "Yes, unpair it" }}
                                </button>
                                <button class="link" on:click=move |_| confirming.set(false)>"Keep it paired"</button>
                            </Show>
                        </div>
                    </section>
                    <nav class="footer-nav"><A href="/device">"Back to approvals"</A></nav>
                </section>
            }.into_any(),
        }}
    }
}

/// The day of an RFC 3339 time ("2026-12-06").
fn day(at: &str) -> String {
    at.get(..10).unwrap_or(at).to_owned()
}
