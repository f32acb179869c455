//! Production's SMS delivery (`store/outbox.rs`, `sms_delivery.rs`): the
//! outbox's claims and outcomes, and the sender task against a mock
//! provider on loopback (the signed webhook): each SMS delivered once
//! across senders, retried with backoff and `Retry-After`, given up when
//! refused or too old, and taken over from a sender that died.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::*;
use crate::clock::ManualClock;
use crate::delivery::Courier as _;
use crate::notify::providers::SmsProviderSettings;
use crate::notify::sms::SmsSeal;
use crate::outbound::mock::{MockProvider, Reply};
use crate::sealed::SecretsKey;
use crate::sms_delivery::{Sender, MAX_AGE_MS};
use crate::store::{SmsAttempt, SmsState};

backends! {
    a_pending_sms_is_claimed_by_one_sender_until_its_lease_ends,
    the_sender_retries_with_backoff_and_retry_after_then_delivers_once,
    two_senders_deliver_each_sms_exactly_once_and_take_over_a_dead_ones,
    a_refused_or_stale_sms_is_given_up_and_its_sealed_copy_forgotten,
    through_twilio_the_message_as_sent_is_posted_and_its_sid_kept,
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Opens a session for Alice whose approval-link SMS to `to` is sealed
/// for a provider; the link it carries.
async fn sealed_sms(store: &Store, w: &World, seed: u8, to: &str, at: Millis) -> String {
    let action = action();
    let new = NewSession {
        token_hash: SecretHash([seed; 32]),
        link_hash: Some(SecretHash([seed.wrapping_add(128); 32])),
        owner: &w.alice,
        method: Method::Passkey,
        action: &action,
        fingerprint: fingerprint("{}"),
        created_at: at,
        expires_at: at.plus_millis(crate::model::SESSION_LIFETIME_MS),
        otp: None,
    };
    let link = format!("https://x/sca/SECRET{seed}");
    let copy = OutboxCopy::Sealed(SmsSeal(SecretsKey::sandbox()));
    let sms = Notice::Sms(OutgoingSms::approval_link(Phone::parse(to).unwrap(), "P", link.clone(), at, copy));
    let event = AuditEvent::session_created(&w.alice, "transfer.single.create", Method::Passkey, &ClientInfo::default(), at);
    assert!(matches!(store.open_session(new, &GENEROUS, Some(&sms), &event).await.unwrap(), SessionOpened::Opened(_)));
    link
}

async fn sender(store: &Store, clock: &ManualClock, mock: &MockProvider) -> Sender {
    let client = crate::outbound::HttpsClient::new(&crate::outbound::ClientOptions::default()).unwrap();
    let provider = SmsProviderSettings::Webhook { url: mock.url("/sms"), secret: SECRET.into() }.build(client).unwrap();
    Sender::new(store.clone(), Arc::new(clock.clone()), provider, SecretsKey::sandbox()).unwrap()
}

async fn a_pending_sms_is_claimed_by_one_sender_until_its_lease_ends(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    sealed_sms(store, &w, 1, "+33600000011", T0).await;
    assert_eq!(store.sms_delivery("+33600000011").await.unwrap(), Some((SmsState::Pending, 0, None, true)));
    // The readable copy keeps no link; the sealed one is only for the sender.
    let kept = store.sms_outbox(Some("+33600000011"), 1).await.unwrap().remove(0);
    assert!(!kept.body.contains("SECRET1") && kept.link.is_none(), "{}", kept.body);

    let until = T0.plus_millis(60_000);
    let claims = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_sms(&format!("sender-{i}"), T0, until, 4).await.unwrap() })
    });
    let claimed: Vec<Vec<ClaimedSms>> = join_all(claims).await.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..4).filter(|i| !claimed[*i].is_empty()).collect();
    assert_eq!(winners.len(), 1, "one sender claims it: {claimed:?}");
    let winner = format!("sender-{}", winners[0]);
    assert!(store.claim_sms("late", T0.plus_millis(59_999), T0.plus_millis(120_000), 4).await.unwrap().is_empty(), "leased");
    // The lease ends: another sender takes it; the first one's outcome no longer counts.
    let retaken = store.claim_sms("next", T0.plus_millis(60_001), T0.plus_millis(120_000), 4).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert!(!store.record_sms_attempt(retaken[0].id, &winner, T0, SmsAttempt::Sent { provider_id: None }).await.unwrap());
    assert!(store.record_sms_attempt(retaken[0].id, "next", T0, SmsAttempt::Sent { provider_id: Some("p-1") }).await.unwrap());
    assert_eq!(store.sms_delivery("+33600000011").await.unwrap(), Some((SmsState::Sent, 1, Some("p-1".into()), false)));
    assert!(store.claim_sms("again", T0.plus_millis(999_999), T0.plus_millis(9_999_999), 4).await.unwrap().is_empty(), "sent once");
    // An SMS kept whole (sandbox) is never for a sender.
    open(store, &w.alice, 2, &GENEROUS, true, T0).await;
    assert_eq!(store.sms_delivery("+33600000001").await.unwrap().map(|d| d.0), Some(SmsState::Kept));
    assert!(store.claim_sms("any", T0.plus_millis(999_999), T0.plus_millis(9_999_999), 4).await.unwrap().is_empty());
}

async fn the_sender_retries_with_backoff_and_retry_after_then_delivers_once(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let clock = ManualClock::starting_at(T0);
    let mock = MockProvider::scripted(vec![
        Reply::new(500),
        Reply::new(429).header("Retry-After", "30"),
        Reply::new(200).json(&serde_json::json!({"id": "prov-1"})),
    ])
    .await;
    let sender = sender(store, &clock, &mock).await;
    let link = sealed_sms(store, &w, 3, "+33600000013", T0).await;

    assert_eq!(sender.send_due().await.unwrap(), 1, "500: to retry");
    assert_eq!(store.sms_delivery("+33600000013").await.unwrap(), Some((SmsState::Pending, 1, None, true)));
    assert_eq!(sender.send_due().await.unwrap(), 0, "not due before its backoff");
    clock.advance_millis(1_000);
    assert_eq!(sender.send_due().await.unwrap(), 1, "429 with Retry-After: 30");
    clock.advance_millis(29_000);
    assert_eq!(sender.send_due().await.unwrap(), 0, "Retry-After is honoured");
    clock.advance_millis(1_000);
    assert_eq!(sender.send_due().await.unwrap(), 1, "200");
    assert_eq!(store.sms_delivery("+33600000013").await.unwrap(), Some((SmsState::Sent, 3, Some("prov-1".into()), false)));
    clock.advance_millis(600_000);
    assert_eq!(sender.send_due().await.unwrap(), 0, "never sent again");

    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    let keys: Vec<_> = requests.iter().map(|r| r.header("Idempotency-Key").unwrap().to_owned()).collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "one id on every attempt: {keys:?}");
    let request = &requests[2];
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["to"], "+33600000013");
    assert!(body["body"].as_str().unwrap().contains(&link), "the message as sent carries its link: {body}");
    let timestamp = request.header("X-Passgate-Timestamp").unwrap();
    let signature = request.header("X-Passgate-Signature").unwrap();
    let signed = crate::notify::providers::verify_signature(
        SECRET.as_bytes(),
        timestamp,
        &request.body,
        signature,
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(300),
    );
    assert!(signed, "the webhook's signature verifies");
}

async fn two_senders_deliver_each_sms_exactly_once_and_take_over_a_dead_ones(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let clock = ManualClock::starting_at(T0);
    let mock = MockProvider::scripted(vec![Reply::new(201)]).await;
    for seed in 0..10u8 {
        sealed_sms(store, &w, 10 + seed, &format!("+336000001{seed:02}"), T0).await;
    }
    // A sender claims two and dies before sending them.
    let dead = store.claim_sms("dead", T0, T0.plus_millis(60_000), 2).await.unwrap();
    assert_eq!(dead.len(), 2);
    let (a, b) = (sender(store, &clock, &mock).await, sender(store, &clock, &mock).await);
    let drain = |sender: Sender| tokio::spawn(async move { while sender.send_due().await.unwrap() > 0 {} });
    let (x, y) = (drain(a), drain(b));
    x.await.unwrap();
    y.await.unwrap();
    assert_eq!(mock.requests().len(), 8, "the dead sender's two wait for its lease");
    clock.advance_millis(60_001);
    let c = sender(store, &clock, &mock).await;
    while c.send_due().await.unwrap() > 0 {}

    let mut per_id = BTreeMap::<String, usize>::new();
    for request in mock.requests() {
        *per_id.entry(request.header("Idempotency-Key").unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 10, "every SMS delivered: {per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "none twice: {per_id:?}");
    for seed in 0..10u8 {
        assert_eq!(store.sms_delivery(&format!("+336000001{seed:02}")).await.unwrap().map(|d| d.0), Some(SmsState::Sent));
    }
}

async fn a_refused_or_stale_sms_is_given_up_and_its_sealed_copy_forgotten(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let clock = ManualClock::starting_at(T0);
    let mock = MockProvider::scripted(vec![Reply::new(400)]).await;
    let sender = sender(store, &clock, &mock).await;
    sealed_sms(store, &w, 40, "+33600000040", T0).await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(store.sms_delivery("+33600000040").await.unwrap(), Some((SmsState::Failed, 1, None, false)), "400 is final");
    clock.advance_millis(3_600_000);
    assert_eq!(sender.send_due().await.unwrap(), 0);
    assert_eq!(mock.requests().len(), 1);

    // Written long ago (a provider down for a quarter of an hour): its
    // link has expired, so it is not sent at all.
    let old = Millis(crate::clock::Clock::now(&clock).0 - MAX_AGE_MS - 1);
    sealed_sms(store, &w, 41, "+33600000041", old).await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(store.sms_delivery("+33600000041").await.unwrap(), Some((SmsState::Failed, 1, None, false)));
    assert_eq!(mock.requests().len(), 1, "nothing sent");
}

async fn through_twilio_the_message_as_sent_is_posted_and_its_sid_kept(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let clock = ManualClock::starting_at(T0);
    let mock = MockProvider::scripted(vec![Reply::new(201).json(&serde_json::json!({"sid": "SM0123456789abcdef0123456789abcdef"}))]).await;
    let client = crate::outbound::HttpsClient::new(&crate::outbound::ClientOptions::default()).unwrap();
    let account_sid = format!("AC{}", "0".repeat(32));
    let settings = SmsProviderSettings::Twilio {
        base_url: mock.base(),
        account_sid: account_sid.clone(),
        api_key_sid: None,
        auth_token: "token".into(),
        from: crate::notify::providers::TwilioSender::Number(Phone::parse("+33700000000").unwrap()),
    };
    let sender = Sender::new(store.clone(), Arc::new(clock.clone()), settings.build(client).unwrap(), SecretsKey::sandbox()).unwrap();
    let link = sealed_sms(store, &w, 50, "+33600000050", T0).await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let kept = Some((SmsState::Sent, 1, Some("SM0123456789abcdef0123456789abcdef".into()), false));
    assert_eq!(store.sms_delivery("+33600000050").await.unwrap(), kept);
    let request = mock.requests().remove(0);
    assert_eq!(request.path, format!("/2010-04-01/Accounts/{account_sid}/Messages.json"));
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
    assert_eq!(form["To"], "+33600000050");
    assert!(form["Body"].contains(&link), "{form:?}");
}
