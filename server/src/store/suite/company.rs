//! A company's users' factors (`store/company.rs`): the removal of a
//! factor, never the last one, ending the user's other sessions and
//! trusted browsers.

use futures::future::join_all;

use super::*;
use crate::model::Liveness;

backends! {
    never_the_last_factor_under_concurrent_removals,
    a_removed_factor_ends_the_other_sessions_and_every_trusted_browser_and_tells_the_user,
}

async fn never_the_last_factor_under_concurrent_removals(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    for round in 0..4 {
        let ids = [add_account_passkey(store, &alice).await, add_account_passkey(store, &alice).await];
        let tasks = ids.iter().map(|id| {
            let (store, alice, id) = (store.clone(), alice.clone(), id.clone());
            tokio::spawn(async move {
                let audit = account_event(crate::model::AuditKind::FactorRemoved, &alice);
                let sms = notice_sms("+33600000002");
                let removal =
                    Removal { user_id: &alice, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one: true, keep_session: None };
                store.remove_passkey(&id, removal).await.unwrap()
            })
        });
        let mut outcomes: Vec<Removed> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
        outcomes.sort_by_key(|o| *o as u8);
        assert_eq!(outcomes, vec![Removed::Yes, Removed::LastFactor], "round {round}");
        assert_eq!(store.passkeys_of_user(&alice).await.unwrap().len(), 1, "round {round}: one factor is left");
        // Clear the last one (as an admin would) for the next round.
        let audit = account_event(crate::model::AuditKind::FactorRemoved, &alice);
        let sms = notice_sms("+33600000002");
        let left = store.passkeys_of_user(&alice).await.unwrap().remove(0).id;
        let removal = Removal { user_id: &alice, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one: false, keep_session: None };
        assert_eq!(store.remove_passkey(&left, removal).await.unwrap(), Removed::Yes);
    }
}

async fn a_removed_factor_ends_the_other_sessions_and_every_trusted_browser_and_tells_the_user(fixture: Fixture) {
    use crate::model::{AuditKind, NewTrustedBrowser};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let alive = Liveness { now: T0, idle_ms: 300_000, max_age_ms: 600_000 };
    for token in [1, 2] {
        store
            .open_browser_session(browser(token, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice))
            .await
            .unwrap();
    }
    let browser =
        NewTrustedBrowser { token_hash: SecretHash([9; 32]), user_id: alice, name: "Chrome", now: T0, expires_at: T0.plus_millis(1_000) };
    store.add_trusted_browser(browser, &account_event(AuditKind::DeviceTrusted, alice)).await.unwrap();
    let id = add_account_passkey(store, alice).await;
    let audit = account_event(AuditKind::FactorRemoved, alice);
    let sms = notice_sms("+33600000003");
    let removal = Removal {
        user_id: alice,
        notice: FactorNotice { audit: &audit, sms: &sms },
        keep_one: false,
        keep_session: Some(&SecretHash([1; 32])),
    };
    assert_eq!(store.remove_passkey(&id, removal).await.unwrap(), Removed::Yes);
    assert!(store.browser_session(&SecretHash([1; 32]), alive, false).await.unwrap().is_some(), "the session that asked stays");
    assert!(store.browser_session(&SecretHash([2; 32]), alive, false).await.unwrap().is_none(), "another session ended");
    assert!(store.trusted_browsers(alice, T0).await.unwrap().is_empty(), "trusted browsers ended");
    assert!(!store.use_trusted_browser(&SecretHash([9; 32]), alice, T0).await.unwrap());
    let outbox = store.sms_outbox(Some("+33600000003"), 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].body.contains("a passkey was removed"), "{}", outbox[0].body);
    // A removal that removes nothing changes nothing and tells nobody.
    assert_eq!(store.remove_passkey(&id, removal).await.unwrap(), Removed::Absent);
    assert_eq!(store.sms_outbox(Some("+33600000003"), 10).await.unwrap().len(), 1);
    assert!(store.browser_session(&SecretHash([1; 32]), alive, false).await.unwrap().is_some());
}
