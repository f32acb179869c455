//! The audit log and the approval evidence (`store/audit.rs`): the chains
//! name the first row tampered with; and retention, the chains' purge
//! (`Store::purge_chain`) and the purge of the rest (`store/purge.rs`).

use super::*;
use crate::model::State;

backends! {
    the_audit_chain_names_the_first_row_changed_removed_or_forged,
    the_purge_removes_whole_verified_prefixes_and_leaves_an_anchor,
    the_purge_removes_what_ran_out_and_keeps_records_and_evidence,
}

async fn chain_verdict(store: &Store, chain: crate::chain::Chain) -> Option<(i64, &'static str)> {
    let key = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::sandbox());
    let report = crate::audit::chain::verify(store, &key, chain).await.unwrap();
    report.broken.map(|b| (b.seq, b.reason))
}

async fn the_audit_chain_names_the_first_row_changed_removed_or_forged(fixture: Fixture) {
    use crate::chain::Chain::{ApprovalEvidence, AuditEvents};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    for _ in 0..5 {
        store.append_audit(&account_event(crate::model::AuditKind::SignedIn, &alice)).await.unwrap();
    }
    let (a, _) = opened(store, &w.alice, 1).await;
    let (b, _) = opened(store, &w.alice, 2).await;
    store.decide_session(&a, State::Allow, T0, &event(&a, &w.alice), Some(r#"{"amount":"1.00"}"#)).await.unwrap();
    store.decide_session(&b, State::Allow, T0, &event(&b, &w.alice), Some(r#"{"amount":"2.00"}"#)).await.unwrap();
    store.link_chains().await.unwrap();
    let state = store.chain_state(AuditEvents).await.unwrap();
    assert_eq!(state.waiting, 0, "{state:?}");
    assert!(state.head_seq >= 7, "{state:?}");
    assert_eq!(chain_verdict(store, AuditEvents).await, None);
    assert_eq!(chain_verdict(store, ApprovalEvidence).await, None);
    let key = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::sandbox());
    assert_eq!(crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap().verified, u64::try_from(state.head_seq).unwrap());

    // A row changed in place (deleted and inserted again, as the owner may).
    fixture
        .raw(
            "CREATE TABLE tamper_kept AS SELECT * FROM audit_events WHERE seq = 3;
             CREATE TABLE tamper_forged AS SELECT * FROM audit_events WHERE seq = 3;
             UPDATE tamper_forged SET detail = '{\"by\":\"someone else\"}';
             DELETE FROM audit_events WHERE seq = 3;
             INSERT INTO audit_events SELECT * FROM tamper_forged;",
        )
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((3, "the row was changed or moved")));
    fixture.raw("DELETE FROM audit_events WHERE seq = 3; INSERT INTO audit_events SELECT * FROM tamper_kept;").await;
    assert_eq!(chain_verdict(store, AuditEvents).await, None, "restored, it holds again");

    // A new row chained by someone without the key: its hash is right
    // (SHA-256 needs no key), its MAC cannot be.
    let last = store.chain_rows(AuditEvents, state.head_seq - 1, 1).await.unwrap().remove(0);
    let seq = state.head_seq + 1;
    let columns = crate::store::rows::AuditColumns {
        at: T0.0,
        kind: "account.signed_in",
        partner_id: None,
        user_id: Some(&alice),
        session_id: None,
        detail: "{}",
        client_ip: None,
        user_agent: None,
    };
    let stranger = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
    let link = stranger.link(AuditEvents, seq, &crate::chain::hash_of(&last.hash).unwrap(), &columns.chained());
    let (hash, mac) = (fixture.blob(&link.hash), fixture.blob(&link.mac));
    fixture
        .raw(&format!(
            "INSERT INTO audit_events (at, kind, user_id, detail, seq, chain_hash, chain_mac)
             VALUES ({}, 'account.signed_in', '{alice}', '{{}}', {seq}, {hash}, {mac});
             UPDATE chain_heads SET seq = {seq}, hash = {hash} WHERE chain = 'audit_events';",
            T0.0
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((seq, "the row's MAC was not made with this deployment's key")));
    let restored = fixture.blob(&last.hash);
    fixture
        .raw(&format!(
            "DELETE FROM audit_events WHERE seq = {seq};
             UPDATE chain_heads SET seq = {}, hash = {restored} WHERE chain = 'audit_events';",
            state.head_seq
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, None);

    // Session A's evidence copied onto session B.
    fixture
        .raw(&format!(
            "CREATE TABLE tamper_copied AS SELECT * FROM approval_evidence WHERE session_id = '{b}';
             UPDATE tamper_copied SET evidence = (SELECT evidence FROM approval_evidence WHERE session_id = '{a}');
             DELETE FROM approval_evidence WHERE session_id = '{b}';
             INSERT INTO approval_evidence SELECT * FROM tamper_copied;"
        ))
        .await;
    assert_eq!(chain_verdict(store, ApprovalEvidence).await, Some((2, "the row was changed or moved")));

    // The newest row cut off, the head left: missing up to the head.
    fixture.raw(&format!("DELETE FROM audit_events WHERE seq = {}", state.head_seq)).await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((state.head_seq, "rows up to the head are missing")));

    // A row removed from the middle, then the newest one.
    fixture.raw("DELETE FROM audit_events WHERE seq = 2").await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((2, "a row is missing from its place")));
}

async fn the_purge_removes_whole_verified_prefixes_and_leaves_an_anchor(fixture: Fixture) {
    use crate::chain::Chain::AuditEvents;
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    let (old, new) = (T0, T0.plus_millis(10_000));
    for at in [old, old, old, new, new, new] {
        let event = AuditEvent::account(crate::model::AuditKind::SignedIn, Some(&alice), serde_json::json!({}), &ClientInfo::default(), at);
        store.append_audit(&event).await.unwrap();
    }
    store.link_chains().await.unwrap();
    let cutoff = T0.plus_millis(5_000);
    let key = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::sandbox());
    // A batch at a time, from the oldest; each leaves an anchor from which
    // the rest verifies.
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 2);
    let report = crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap();
    assert_eq!((report.from_seq, report.verified, report.broken), (2, 4, None));
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 1);
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 0, "the rest is newer");
    // An old row after newer ones is not a prefix: it stays.
    let late = AuditEvent::account(crate::model::AuditKind::SignedIn, Some(&alice), serde_json::json!({}), &ClientInfo::default(), old);
    store.append_audit(&late).await.unwrap();
    store.link_chains().await.unwrap();
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 100, new).await.unwrap(), 0);
    let report = crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap();
    assert_eq!((report.from_seq, report.verified, report.broken), (3, 4, None));
    // A purge never removes a break: it stops before the changed row.
    fixture
        .raw(
            "CREATE TABLE tamper_row AS SELECT * FROM audit_events WHERE seq = 5;
             UPDATE tamper_row SET detail = '{\"edited\":true}';
             DELETE FROM audit_events WHERE seq = 5;
             INSERT INTO audit_events SELECT * FROM tamper_row;",
        )
        .await;
    let everything = T0.plus_millis(20_000);
    assert_eq!(store.purge_chain(AuditEvents, everything, 100, everything).await.unwrap(), 1);
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((5, "the row was changed or moved")));
    // An anchor not made with the key is no start.
    let six = store.chain_rows(AuditEvents, 5, 1).await.unwrap().remove(0);
    fixture
        .raw(&format!(
            "INSERT INTO chain_anchors (chain, seq, hash, mac, at) VALUES ('audit_events', 6, {}, {}, 0)",
            fixture.blob(&six.hash),
            fixture.blob(&[0; 32])
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((6, "the purge anchor was not made with this deployment's key")));
}

async fn the_purge_removes_what_ran_out_and_keeps_records_and_evidence(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    // Ran out unused, with a pending ceremony and an SMS.
    let (expired, _) = match open(store, &w.alice, 1, &GENEROUS, true, T0).await {
        (SessionOpened::Opened(id), token) => (id, token),
        (other, _) => panic!("{other:?}"),
    };
    store.save_ceremony(&expired, CeremonyKind::Authentication, "{}", T0).await.unwrap();
    store.append_audit(&event(&expired, &w.alice)).await.unwrap();
    // Used by its transfer: the record of it stays.
    let (used, token) = opened(store, &w.alice, 2).await;
    store.decide_session(&used, State::Allow, T0, &event(&used, &w.alice), None).await.unwrap();
    let caller = caller(&w, &w.alice);
    let (action, fp) = (action(), fingerprint("{}"));
    let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: None, now: T0 };
    assert!(matches!(store.consume_and_run(replay).await.unwrap(), ReplayOutcome::Ran(_)));

    let after_expiry = T0.plus_millis(crate::model::SESSION_LIFETIME_MS + 1);
    let before = PurgeBefore { operational: after_expiry, evidence: T0, idempotency: T0, ceremonies: T0, batch: 100 };
    let purged = store.purge(before).await.unwrap();
    assert_eq!((purged.sessions, purged.sms, purged.audit_events), (1, 1, 0));
    assert!(store.session_by_token(&SecretHash([1; 32]), Lookup::Settled).await.unwrap().is_none());
    assert_eq!(store.session_by_token(&SecretHash([2; 32]), Lookup::Settled).await.unwrap().unwrap().state, State::Consumed);
    assert_eq!(store.audit_of_session(&expired).await.unwrap().len(), 2, "evidence outlives the session");
    assert_eq!(store.purge(before).await.unwrap(), Purged::default(), "nothing left to purge");
    store.link_chains().await.unwrap();
    let purged = store.purge_chain(crate::chain::Chain::AuditEvents, after_expiry, 100, after_expiry).await.unwrap();
    assert_eq!(purged, 4);
    assert!(store.audit_of_session(&expired).await.unwrap().is_empty());
}
