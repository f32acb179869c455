//! The user's own security: the overview (authenticator app, recovery
//! codes, passkeys to rename or remove, sign-out everywhere) and setting up
//! an authenticator app.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::{
    error_code, CodeInput, PairedPhoneInfo, PasskeyInfo, PasskeyRename, RecoveryCodes, SecurityOverview, SignInStage, StepUp, TotpSetup,
    TrustedBrowserInfo,
};

use super::recovery::RecoveryCodeList;
use super::step_up::{self, Purpose, StepUpPanel};
use super::{api, said, when, Failure, Loading, Problem, Session};

#[component]
pub fn SecurityPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let overview = LocalResource::new(|| api::get::<SecurityOverview>("/api/account/security"));
    let reload = move || overview.refetch();
    // The page's one place for what went wrong with a change.
    let error = RwSignal::new(None::<String>);
    // Adding a passkey asked to confirm it's the user: what is due.
    let confirming = RwSignal::new(None::<StepUp>);
    // Adding a passkey; `check`: first ask what the session must prove
    // again, if anything (not when it just did).
    let adding = Action::new_local(move |check: &bool| {
        let check = *check;
        async move {
            if check {
                let due = step_up::due().await?;
                if !due.done {
                    confirming.set(Some(due));
                    return Ok(());
                }
            }
            match api::passkey::add().await {
                Ok(()) => reload(),
                // The proof grew old meanwhile: confirm again, then it goes on.
                Err(f) => match f.step_up() {
                    Some(due) => confirming.set(Some(due)),
                    None => return Err(f),
                },
            }
            Ok(())
        }
    });
    said(adding, error);
    let add_passkey = move |check: bool| {
        error.set(None);
        adding.dispatch_local(check);
    };
    let navigate = use_navigate();
    let leaving = Action::new_local(move |_: &()| {
        let navigate = navigate.clone();
        async move {
            api::call::<()>("POST", "/api/account/sign-out-everywhere", None).await?;
            session.set(None);
            session.notice.set(Some("You signed out on every browser.".into()));
            navigate("/account/sign-in", NavigateOptions::default());
            Ok::<_, Failure>(())
        }
    });
    said(leaving, error);
    let everywhere = move |_| {
        if !super::confirmed("Sign out everywhere? Every browser, this one included, and every trusted browser will have to sign in again.")
        {
            return;
        }
        leaving.dispatch_local(());
    };
    view! {
        {move || match overview.get() {
            None => view! { <Loading what="your security" /> }.into_any(),
            Some(Err(f)) => view! { <section class="card"><h1>"Your security"</h1><Problem text=f.message /></section> }.into_any(),
            Some(Ok(o)) => view! {
                <section class="card">
                    <h1>"Your security"</h1>
                    <p class="muted">{move || session.current.get().map(|s| format!("Signed in as {}", s.user.email.unwrap_or(s.user.display_name)))}</p>
                    {(o.two_factor == "forced").then(|| view! { <p class="notice">"Your company asks every user for a second factor."</p> })}
                    <h2>"Authenticator app"</h2>
                    {match o.authenticator_app.clone() {
                        Some(app) => view! {
                            <p>{format!("Added {}", when(&app.added_at))}
                               {app.last_used_at.map(|at| format!(" · last used {}", when(&at)))}</p>
                            <p class="muted">{format!("{} recovery codes left.", o.recovery_codes_left)}</p>
                            <div class="row">
                                <A href="/account/security/authenticator?replace=1" attr:class="button outline">"Replace app"</A>
                                <A href="/account/security/recovery-codes" attr:class="button outline">"New recovery codes"</A>
                            </div>
                        }.into_any(),
                        None => view! {
                            <p class="muted">"Codes from an app on your phone as a second step when you sign in."</p>
                            <A href="/account/security/authenticator" attr:class="button primary">"Set up an authenticator app"</A>
                        }.into_any(),
                    }}
                    <h2>"Passkeys"</h2>
                    {if o.passkeys.is_empty() {
                        view! { <p class="muted">"No passkey yet. Add one here, or create it from an approval link with your password."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="list">
                                {o.passkeys.into_iter().map(|p| view! { <PasskeyRow passkey=p error=error on_change=reload /> }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                    {move || match confirming.get() {
                        Some(due) => view! {
                            <StepUpPanel due=due
                                on_done=move || { confirming.set(None); add_passkey(false) }
                                on_cancel=move || confirming.set(None) />
                        }.into_any(),
                        None => view! {
                            <button type="button" class="outline" on:click=move |_| add_passkey(true)>"Add a passkey"</button>
                        }.into_any(),
                    }}
                    {move || error.get().map(|text| view! { <Problem text=text /> })}
                    <PairedPhone />
                    <TrustedBrowsers error=error />
                    <h2>"Sessions"</h2>
                    <button type="button" class="secondary" on:click=everywhere>"Sign out everywhere"</button>
                </section>
            }.into_any(),
        }}
    }
}

#[component]
fn PasskeyRow(passkey: PasskeyInfo, error: RwSignal<Option<String>>, on_change: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let editing = RwSignal::new(false);
    let original = passkey.name.clone().unwrap_or_default();
    let name = RwSignal::new(original.clone());
    let url = format!("/api/account/passkeys/{}", passkey.id);
    let label = passkey.name.clone().unwrap_or_else(|| "Passkey".into());
    let (save_url, remove_url) = (url.clone(), url);
    let renaming = Action::new_local(move |rename: &PasskeyRename| {
        let (url, rename) = (save_url.clone(), rename.clone());
        async move {
            api::call("PATCH", &url, Some(&rename)).await?;
            on_change();
            Ok::<_, Failure>(())
        }
    });
    said(renaming, error);
    let removing = super::removing(error, on_change);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        renaming.dispatch_local(PasskeyRename { name: name.get_untracked() });
    };
    let question = format!("Remove the passkey \u{201c}{label}\u{201d}? It will no longer sign you in nor approve payments.");
    let remove = move |_| {
        if !super::confirmed(&question) {
            return;
        }
        removing.dispatch_local(remove_url.clone());
    };
    let remove_label = format!("Remove {label}");
    let rename_label = format!("Rename {label}");
    view! {
        <li>
            <div>
                <strong>{label.clone()}</strong>
                <span class="tag">{if passkey.synced { "Synced" } else { "This device only" }}</span>
                <p class="muted">{format!("Added {}", when(&passkey.added_at))}{passkey.last_used_at.map(|at| format!(" · last used {}", when(&at)))}</p>
            </div>
            <Show when=move || editing.get() fallback=move || view! {
                <div class="row">
                    <button type="button" class="link" aria-label=rename_label.clone() on:click=move |_| editing.set(true)>"Rename"</button>
                    <button type="button" class="link danger" aria-label=remove_label.clone() on:click=remove.clone()>"Remove"</button>
                </div>
            }>
                <form class="row" on:submit=save>
                    <label class="visually-hidden" for="passkey-name">"New name"</label>
                    <input id="passkey-name" type="text" maxlength="64" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    <button type="submit" class="primary small">"Save"</button>
                    <button type="button" class="link" on:click={
                        let original = original.clone();
                        move |_| { name.set(original.clone()); editing.set(false); }
                    }>"Cancel"</button>
                </form>
            </Show>
        </li>
    }
}

/// The user's paired phone: what it is, whether approvals reach it as
/// notifications, and unpairing it. Pairing starts on the phone itself.
#[component]
fn PairedPhone() -> impl IntoView {
    let phone = LocalResource::new(|| async {
        match api::get::<PairedPhoneInfo>("/api/account/phone").await {
            Ok(p) => Ok(Some(p)),
            Err(f) if f.code == error_code::NOT_FOUND => Ok(None),
            Err(f) => Err(f),
        }
    });
    let unpairing = Action::new_local(|_: &()| async {
        match api::call::<()>("DELETE", "/api/account/phone", None).await {
            // Gone already (unpaired from the phone, or by an admin): the same.
            Ok(()) => Ok(()),
            Err(f) if f.code == error_code::NOT_FOUND || f.code == error_code::PHONE_NOT_PAIRED => Ok(()),
            Err(f) => Err(f),
        }
    });
    let unpaired = Memo::new(move |_| unpairing.value().with(|answer| matches!(answer, Some(Ok(())))));
    // What went wrong, until the user tries again.
    let error = move || {
        if unpairing.pending().get() {
            return None;
        }
        unpairing.value().with(|answer| answer.as_ref().and_then(|a| a.as_ref().err()).map(|f| f.message.clone()))
    };
    let unpair = move |_| {
        if !super::confirmed("Unpair your phone? It will no longer approve payments nor confirm your sign-ins.") {
            return;
        }
        unpairing.dispatch_local(());
    };
    view! {
        <h2>"Paired phone"</h2>
        {move || match if unpaired.get() { Some(Ok(None)) } else { phone.get() } {
            None => view! {
                <div aria-busy="true"><span class="visually-hidden">"Loading your paired phone…"</span><div class="skeleton"></div></div>
            }.into_any(),
            Some(Err(f)) => view! { <Problem text=f.message /> }.into_any(),
            Some(Ok(None)) => view! {
                {unpaired.get().then(|| view! { <p class="notice" role="status">"Your phone is unpaired."</p> })}
                <p class="muted">"No phone is paired; you pair one from the phone itself."</p>
            }.into_any(),
            Some(Ok(Some(p))) => view! {
                <p>{format!("Paired on {}", when(&p.paired_at))}</p>
                <p class="muted">{match &p.last_used_at {
                    Some(at) => format!("Last used {}", when(at)),
                    None => "Not used yet".into(),
                }}</p>
                {p.synced.then(|| view! { <p class="muted">"Its passkey is synced by its provider."</p> })}
                {if p.notifications {
                    view! { <p>"Notifications on"</p> }.into_any()
                } else {
                    view! {
                        <p class="warning">"Notifications off \u{2014} approvals reach this phone only while its Passgate app is open. Turn them on from the phone."</p>
                    }.into_any()
                }}
                <button type="button" class="link danger" aria-label="Unpair your phone" on:click=unpair>"Unpair"</button>
                {move || error().map(|text| view! { <Problem text=text /> })}
            }.into_any(),
        }}
    }
}

/// The browsers where the password alone signs in.
#[component]
fn TrustedBrowsers(error: RwSignal<Option<String>>) -> impl IntoView {
    let answer = LocalResource::new(|| api::get::<Vec<TrustedBrowserInfo>>("/api/account/trusted-browsers"));
    // The list as last read; a failure is said in the page's place for it.
    let browsers = Memo::new(move |last: Option<&Vec<TrustedBrowserInfo>>| match answer.get() {
        Some(Ok(list)) => list,
        _ => last.cloned().unwrap_or_default(),
    });
    Effect::new(move |_| {
        if let Some(Err(f)) = answer.get() {
            error.set(Some(f.message));
        }
    });
    let revoking = Action::new_local(move |url: &String| {
        let url = url.clone();
        async move {
            api::call::<()>("DELETE", &url, None).await?;
            answer.refetch();
            Ok::<_, Failure>(())
        }
    });
    said(revoking, error);
    let revoke = move |url: String, question: String| {
        if !super::confirmed(&question) {
            return;
        }
        revoking.dispatch_local(url);
    };
    view! {
        <h2>"Trusted browsers"</h2>
        <Show when=move || !browsers.with(Vec::is_empty) fallback=|| view! {
            <p class="muted">"None. When you sign in with your second factor, you may trust the browser for 90 days."</p>
        }>
            <ul class="list">
                {move || browsers.get().into_iter().map(|d| {
                    let url = format!("/api/account/trusted-browsers/{}", d.id);
                    let label = format!("Stop trusting {}", d.name);
                    let question = format!("Stop trusting {}? Its next sign-in will ask for your second factor.", d.name);
                    view! {
                        <li>
                            <div>
                                <strong>{d.name.clone()}</strong>
                                <p class="muted">{format!("Last used {} · until {}", when(&d.last_used_at), when(&d.expires_at))}</p>
                            </div>
                            <button type="button" class="link danger" aria-label=label on:click=move |_| revoke(url.clone(), question.clone())>"Stop trusting"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <button type="button" class="link danger" on:click=move |_| revoke("/api/account/trusted-browsers".into(), "Stop trusting every browser? Each will ask for your second factor at its next sign-in.".into())>"Stop trusting all browsers"</button>
        </Show>
    }
}

#[derive(Clone, PartialEq)]
enum Setup {
    Starting,
    /// Confirm it's the user first; `then`, the set-up to go back to
    /// (its code confirmed again), if it was under way.
    Confirming {
        due: StepUp,
        then: Option<TotpSetup>,
    },
    Scan(TotpSetup),
    Codes(Vec<String>),
    Failed(Failure),
}

#[component]
pub fn AuthenticatorPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let step = RwSignal::new(Setup::Starting);
    let code = RwSignal::new(String::new());
    // What the session must prove first, then the new key.
    // Replacing the app the user has (from the link, then as the server says).
    let replacing = RwSignal::new(use_query_map().with_untracked(|q| q.get("replace").is_some()));
    let starting = Action::new_local(move |_: &()| async move {
        // For a user without an app, the same as any binding.
        let next = match step_up::due_for(Purpose::ReplaceApp).await {
            Ok(due) if !due.done => Setup::Confirming { due, then: None },
            Ok(_) => match api::post::<(), TotpSetup>("/api/account/totp/setup", None).await {
                Ok(setup) => {
                    replacing.set(setup.replacing);
                    Setup::Scan(setup)
                }
                Err(f) => match f.step_up() {
                    Some(due) => Setup::Confirming { due, then: None },
                    None => Setup::Failed(f),
                },
            },
            Err(f) => Setup::Failed(f),
        };
        step.set(next);
    });
    let start = move || {
        step.set(Setup::Starting);
        starting.dispatch_local(());
    };
    start();
    let forced = move || session.current.with(|s| s.as_ref().is_some_and(|s| s.stage == SignInStage::Enrol));
    let confirming = Action::new_local(move |input: &CodeInput| {
        let input = input.clone();
        async move {
            match api::post::<CodeInput, RecoveryCodes>("/api/account/totp/confirm", Some(&input)).await {
                Ok(done) => {
                    if let Some(next) = done.session {
                        session.set(Some(next));
                    }
                    step.set(Setup::Codes(done.recovery_codes));
                }
                // The proof grew old while the user scanned: confirm it's
                // them again, then this code goes again.
                Err(f) => match f.step_up() {
                    Some(due) => {
                        let then = match step.get_untracked() {
                            Setup::Scan(setup) => Some(setup),
                            _ => None,
                        };
                        step.set(Setup::Confirming { due, then });
                    }
                    None => {
                        code.set(String::new());
                        return Err(f);
                    }
                },
            }
            Ok(())
        }
    });
    let busy = move || confirming.pending().get();
    // What went wrong with the code, until it goes again.
    let error = move || {
        if busy() {
            return None;
        }
        confirming.value().with(|answer| answer.as_ref().and_then(|a| a.as_ref().err()).map(|f| f.message.clone()))
    };
    let confirm = move || {
        if confirming.pending().get_untracked() {
            return;
        }
        confirming.dispatch_local(CodeInput { code: code.get_untracked(), trust_browser: false });
    };
    let confirmed = move || match step.get_untracked() {
        Setup::Confirming { then: Some(setup), .. } => {
            step.set(Setup::Scan(setup));
            confirm();
        }
        _ => start(),
    };
    let signing_out = super::signing_out(navigate.clone());
    let cancel = {
        let navigate = navigate.clone();
        move || {
            if !forced() {
                navigate("/account/security", NavigateOptions::default());
                return;
            }
            // Forced to set up a factor: nowhere else to go but out.
            signing_out.dispatch_local("You signed out. Your company asks for a second factor: set it up at your next sign-in.");
        }
    };
    let cancel = Callback::new(move |()| cancel());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        confirm();
    };
    let finish = move |_| navigate("/account/security", NavigateOptions::default());
    view! {
        <section class="card">
            <h1>{move || if replacing.get() { "Replace your authenticator app" } else { "Set up an authenticator app" }}</h1>
            <Show when=forced>
                <p class="notice">"Your company asks every user for a second factor: set one up to continue."</p>
            </Show>
            {move || match step.get() {
                Setup::Starting => view! { <div aria-busy="true"><span class="visually-hidden">"Preparing your key…"</span><div class="skeleton qr"></div></div> }.into_any(),
                Setup::Confirming { due, .. } => view! {
                    <StepUpPanel due=due purpose=Purpose::ReplaceApp on_done=move || confirmed() on_cancel=cancel />
                }.into_any(),
                Setup::Failed(f) => view! {
                    <Problem text=f.message />
                    <A href="/account/security">"Back to your security"</A>
                }.into_any(),
                Setup::Scan(setup) => view! {
                    <ol class="steps">
                        <li>"Scan this code with your authenticator app (Google Authenticator, 1Password, Aegis…)."</li>
                    </ol>
                    <img class="qr" alt="QR code of your authenticator key" width="200" height="200" src=svg_data_uri(&setup.qr_svg) />
                    <p>"On the phone with the app?"</p>
                    <p><a class="button outline" href=setup.otpauth_uri.clone()>"Open in authenticator app"</a></p>
                    <p>"Or type this key:"</p>
                    <p><code class="secret" data-testid="totp-secret">{grouped(&setup.secret)}</code></p>
                    <CopyKey key=setup.secret.clone() />
                    <form on:submit=submit novalidate>
                        <div class="field">
                            <label for="code">"Code shown by the app"</label>
                            <input id="code" type="text" inputmode="numeric" autocomplete="one-time-code" required
                                prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
                        </div>
                        {move || error().map(|text| view! { <Problem text=text /> })}
                        <div class="actions">
                            <button type="submit" class="primary" disabled=busy>"Confirm"</button>
                            <button type="button" class="outline" on:click=move |_| cancel.run(())>
                                {move || if forced() { "Cancel and sign out" } else { "Cancel" }}
                            </button>
                        </div>
                    </form>
                }.into_any(),
                Setup::Codes(codes) => view! {
                    <p class="notice" role="status">{if replacing.get_untracked() {
                        "Your new authenticator app is set up: the old one and its recovery codes no longer work."
                    } else {
                        "Your authenticator app is set up."
                    }}</p>
                    <RecoveryCodeList codes=codes />
                    <div class="actions">
                        <button type="button" class="primary" on:click=finish.clone()>"I saved them"</button>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// "Copy key": the key without its spaces on the clipboard, and "Copied"
/// said politely (or, where the browser refuses, what to do instead).
#[component]
fn CopyKey(key: String) -> impl IntoView {
    // `Some(copied)` once the browser answered.
    let copying = Action::new_local(|key: &String| {
        let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
        let key = key.clone();
        async move {
            let clipboard = clipboard?;
            Some(wasm_bindgen_futures::JsFuture::from(clipboard.write_text(&key)).await.is_ok())
        }
    });
    let said = move || match copying.value().get().flatten() {
        Some(true) => "Copied",
        Some(false) => "Could not copy: select the key and copy it.",
        None => "",
    };
    let copy = move |_| {
        copying.dispatch_local(key.clone());
    };
    view! {
        <div class="row">
            <button type="button" class="outline small" on:click=copy>"Copy key"</button>
            <span role="status">{said}</span>
        </div>
    }
}

/// The key in groups of four (`ABCD EFGH …`), easier to read and type.
fn grouped(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The server's SVG as an image (no markup of ours in the page).
fn svg_data_uri(svg: &str) -> String {
    let encoded = web_sys::window().and_then(|w| w.btoa(svg).ok()).unwrap_or_default();
    format!("data:image/svg+xml;base64,{encoded}")
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn a_key_is_shown_in_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), "ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567");
        assert_eq!(grouped("ABCDEF"), "ABCD EF");
        assert_eq!(grouped(""), "");
    }
}
