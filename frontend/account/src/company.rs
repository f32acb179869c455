//! The company's administration (admins): the two-factor policy, the
//! report "users within a company", removing a user's factor.

use leptos::prelude::*;
use shared::{CompanyReport, CompanyUser, PolicyInput};

use super::{api, said, when, Failure, Loading, Problem, Session};

#[component]
pub fn CompanyPage() -> impl IntoView {
    let report = LocalResource::new(|| api::get::<CompanyReport>("/api/account/company"));
    let reload = move || report.refetch();
    // The page's one place for what went wrong with a change.
    let error = RwSignal::new(None::<String>);
    let policy = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(r)) = report.get() {
            policy.set(r.two_factor);
        }
    });
    let saving = Action::new_local(move |input: &PolicyInput| {
        let input = input.clone();
        async move {
            api::call("PUT", "/api/account/company/policy", Some(&input)).await?;
            reload();
            Ok::<_, Failure>(())
        }
    });
    said(saving, error);
    let saved = move || saving.value().with(|done| matches!(done, Some(Ok(()))));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saving.dispatch_local(PolicyInput { two_factor: policy.get_untracked() });
    };
    view! {
        {move || match report.get() {
            None => view! { <Loading what="your company" /> }.into_any(),
            Some(Err(f)) => view! { <section class="card"><h1>"Company"</h1><Problem text=f.message /></section> }.into_any(),
            Some(Ok(r)) => view! {
                <section class="card">
                    <h1>{r.name.clone()}</h1>
                    <form on:submit=save>
                        <fieldset>
                            <legend>"Two-factor authentication"</legend>
                            <label class="choice">
                                <input type="radio" name="policy" value="opt_in" prop:checked=move || policy.get() == "opt_in" on:change=move |_| policy.set("opt_in".into()) />
                                "Opt-in: each user chooses"
                            </label>
                            <label class="choice">
                                <input type="radio" name="policy" value="forced" prop:checked=move || policy.get() == "forced" on:change=move |_| policy.set("forced".into()) />
                                "Forced: every user sets it up at their next sign-in"
                            </label>
                        </fieldset>
                        <button type="submit" class="primary small">"Save policy"</button>
                        {move || saved().then(|| view! { <p class="notice" role="status">"Policy saved."</p> })}
                    </form>
                    {move || error.get().map(|text| view! { <Problem text=text /> })}
                    <h2>"Users within the company"</h2>
                    <div class="table-wrap">
                        // A card per user on phones (account.css): the explicit
                        // roles keep the table's semantics where CSS unmakes it.
                        <table class="report" role="table">
                            <thead role="rowgroup"><tr role="row">
                                <th scope="col" role="columnheader">"User"</th>
                                <th scope="col" role="columnheader">"Authenticator app"</th>
                                <th scope="col" role="columnheader">"Passkeys"</th>
                                <th scope="col" role="columnheader">"Paired phone"</th>
                            </tr></thead>
                            <tbody role="rowgroup">{r.users.into_iter().map(|u| view! { <UserRow user=u error=error on_change=reload /> }).collect_view()}</tbody>
                        </table>
                    </div>
                </section>
            }.into_any(),
        }}
    }
}

#[component]
fn UserRow(user: CompanyUser, error: RwSignal<Option<String>>, on_change: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let session = expect_context::<Session>();
    let is_me = session.current.with_untracked(|s| s.as_ref().is_some_and(|s| s.user.id == user.id));
    let removing = super::removing(error, on_change);
    let remove = move |url: String| {
        if !super::confirmed("Remove this sign-in method? The user is told by SMS and signed out everywhere.") {
            return;
        }
        removing.dispatch_local(url);
    };
    let who = user.email.clone().unwrap_or_else(|| user.display_name.clone());
    let app_url = format!("/api/account/company/users/{}/totp", user.id);
    let app_label = format!("Remove the authenticator app of {who}");
    view! {
        <tr role="row">
            <th scope="row" role="rowheader">{user.display_name.clone()}<br /><span class="muted">{who.clone()}</span>{(user.role == "admin").then(|| view! { <span class="tag">"admin"</span> })}</th>
            <td role="cell" data-label="Authenticator app">{match user.authenticator_app.clone() {
                Some(app) => view! {
                    <span>{format!("Added {}", when(&app.added_at))}</span><br />
                    <span class="muted">{app.last_used_at.map_or("Never used".to_owned(), |at| format!("Last used {}", when(&at)))}</span>
                    {(!is_me).then(|| view! { <br /><button type="button" class="link danger" aria-label=app_label.clone() on:click=move |_| remove(app_url.clone())>"Remove"</button> })}
                }.into_any(),
                None => view! { <span class="muted">"None"</span> }.into_any(),
            }}</td>
            <td role="cell" data-label="Passkeys">{if user.passkeys.is_empty() {
                view! { <span class="muted">"None"</span> }.into_any()
            } else {
                view! { <ul class="plain">{user.passkeys.iter().map(|p| {
                    let url = format!("/api/account/company/users/{}/passkeys/{}", user.id, p.id);
                    let label = format!("Remove the passkey {} of {who}", p.name.clone().unwrap_or_else(|| "Passkey".into()));
                    view! {
                        <li>
                            {p.name.clone().unwrap_or_else(|| "Passkey".into())}
                            <span class="muted">{p.last_used_at.as_ref().map_or(" · never used".to_owned(), |at| format!(" · last used {}", when(at)))}</span>
                            {(!is_me).then(|| view! { <button type="button" class="link danger" aria-label=label on:click=move |_| remove(url.clone())>"Remove"</button> })}
                        </li>
                    }
                }).collect_view()}</ul> }.into_any()
            }}</td>
            <td role="cell" data-label="Paired phone"><span class="muted">{user.paired_phone.map_or("None".to_owned(), |p| format!("Paired {}", when(&p.added_at)))}</span></td>
        </tr>
    }
}
