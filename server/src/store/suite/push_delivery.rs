//! Web Push's delivery (`store/push_outbox.rs`, `push_delivery.rs`): a
//! push is for the sender task only when the phone has a subscription;
//! it is claimed by one sender per lease, retried with backoff and
//! `Retry-After`, sent once across senders (a dead one's claims taken
//! over), and a subscription the push service no longer knows is dropped
//! — the phone then shows its notifications off. Against the strict mock
//! push service on loopback, which checks VAPID and decrypts each push.

use futures::future::join_all;

use super::phone_confirmations::{alice_with_phone, ask, asked};
use super::*;
use crate::clock::{Clock, ManualClock};
use crate::delivery::Courier as _;
use crate::model::ConfirmationPurpose;
use crate::notify::push::Announced;
use crate::notify::webpush::{PushSubscription, VapidKey, VapidSubject, WebPush};
use crate::outbound::mock::Reply;
use crate::outbound::mock_push::MockPush;
use crate::push_delivery::{Sender, PUSH_TTL};
use crate::store::{PushAttempt, PushState, StoredSubscription};

backends! {
    a_push_waits_for_a_sender_only_if_the_phone_subscribed_and_is_claimed_once,
    the_sender_retries_with_backoff_and_retry_after_then_delivers_once,
    two_senders_deliver_each_push_exactly_once_and_take_over_a_dead_ones,
    a_gone_subscription_is_dropped_unless_the_phone_subscribed_again,
}

fn stored(subscription: &PushSubscription) -> StoredSubscription {
    StoredSubscription { endpoint: subscription.endpoint().to_string(), p256dh: subscription.p256dh(), auth: subscription.auth() }
}

/// A VAPID key, the mock push service that knows it, and Alice's phone
/// subscribed to it.
async fn subscribed(store: &Store) -> (String, String, VapidKey, MockPush, PushSubscription) {
    let (alice, phone) = alice_with_phone(store, 7).await;
    let key = VapidKey::generate();
    let mock = MockPush::start(&key.public_base64url()).await;
    let subscription = mock.subscribe();
    assert!(store.set_push_subscription(&phone.id, Some(&stored(&subscription)), T0).await.unwrap());
    (alice, phone.id, key, mock, subscription)
}

fn sender(store: &Store, clock: &ManualClock, key: &VapidKey) -> Sender {
    let client = crate::outbound::HttpsClient::new(&crate::outbound::ClientOptions::default()).unwrap();
    let web_push = WebPush::new(client, key.clone(), VapidSubject::parse("mailto:ops@bank.example").unwrap(), PUSH_TTL);
    Sender::new(store.clone(), Arc::new(clock.clone()), Arc::new(web_push)).unwrap()
}

/// Asks Alice's phone for the `n`th confirmation (30 s apart, the
/// shortest a user may ask again); its id.
async fn confirmation(store: &Store, alice: &str, phone_id: &str, n: i64) -> String {
    asked(ask(store, alice, phone_id, 7, ConfirmationPurpose::SignIn, T0.plus_millis(30_000 * n)).await)
}

fn payload(id: &str) -> Vec<u8> {
    serde_json::json!({ "confirmation": id }).to_string().into_bytes()
}

async fn a_push_waits_for_a_sender_only_if_the_phone_subscribed_and_is_claimed_once(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone) = alice_with_phone(store, 7).await;
    assert!(!phone.notifications);
    confirmation(store, &alice, &phone.id, 0).await;
    assert_eq!(store.push_delivery(&phone.id).await.unwrap(), Some((PushState::Kept, 0)), "no subscription: kept");
    assert!(store.claim_pushes("any", T0.plus_millis(1), T0.plus_millis(60_000), 4).await.unwrap().is_empty());

    let key = VapidKey::generate();
    let mock = MockPush::start(&key.public_base64url()).await;
    let subscription = stored(&mock.subscribe());
    assert!(store.set_push_subscription(&phone.id, Some(&subscription), T0).await.unwrap());
    assert!(!store.set_push_subscription("no-such-phone", Some(&subscription), T0).await.unwrap());
    assert_eq!(store.push_subscription(&phone.id).await.unwrap(), Some(subscription.clone()));
    assert!(store.paired_phone_of_user(&alice).await.unwrap().unwrap().notifications, "notifications on");
    let id = confirmation(store, &alice, &phone.id, 1).await;
    assert_eq!(store.push_delivery(&phone.id).await.unwrap(), Some((PushState::Pending, 0)));

    let (now, until) = (T0.plus_millis(30_000), T0.plus_millis(90_000));
    let claims = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_pushes(&format!("sender-{i}"), now, until, 4).await.unwrap() })
    });
    let claimed: Vec<Vec<ClaimedPush>> = join_all(claims).await.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..4).filter(|i| !claimed[*i].is_empty()).collect();
    assert_eq!(winners.len(), 1, "one sender claims it: {claimed:?}");
    let push = &claimed[winners[0]][0];
    assert_eq!((push.phone_id.as_str(), &push.announced, push.attempts), (phone.id.as_str(), &Announced::Confirmation(id), 0));
    assert!(store.claim_pushes("late", T0.plus_millis(89_999), T0.plus_millis(200_000), 4).await.unwrap().is_empty(), "leased");
    // The lease ends: another sender takes it; the first one's outcome no longer counts.
    let retaken = store.claim_pushes("next", T0.plus_millis(90_001), T0.plus_millis(200_000), 4).await.unwrap();
    assert_eq!(retaken.len(), 1);
    let winner = format!("sender-{}", winners[0]);
    assert!(!store.record_push_attempt(push.id, &winner, T0.plus_millis(90_002), PushAttempt::Sent).await.unwrap());
    assert!(store.record_push_attempt(push.id, "next", T0.plus_millis(90_002), PushAttempt::Sent).await.unwrap());
    assert_eq!(store.push_delivery(&phone.id).await.unwrap(), Some((PushState::Sent, 1)));
    assert!(store.claim_pushes("again", T0.plus_millis(999_999), T0.plus_millis(9_999_999), 4).await.unwrap().is_empty(), "sent once");

    // Unsubscribing turns the phone's notifications off.
    assert!(store.set_push_subscription(&phone.id, None, T0).await.unwrap());
    assert!(store.push_subscription(&phone.id).await.unwrap().is_none());
    assert!(!store.paired_phone_of_user(&alice).await.unwrap().unwrap().notifications);

    // Unpairing forgets a subscription with the pairing, and no other.
    assert!(store.set_push_subscription(&phone.id, Some(&subscription), T0).await.unwrap());
    let kept = "SELECT COUNT(*) FROM paired_phones WHERE push_endpoint IS NOT NULL";
    assert_eq!(fixture.raw_count(kept).await, 1);
    let (audit, sms) = (account_event(crate::model::AuditKind::FactorRemoved, &alice), notice_sms("+33600000001"));
    let notice = FactorNotice { audit: &audit, sms: &sms };
    assert!(store.unpair_phone(&phone.id, &crate::model::UnpairedBy::User, T0, notice).await.unwrap());
    assert_eq!(fixture.raw_count(kept).await, 0, "an ended pairing keeps no endpoint");
    assert!(!store.set_push_subscription(&phone.id, Some(&subscription), T0).await.unwrap(), "nor takes a new one");
}

async fn the_sender_retries_with_backoff_and_retry_after_then_delivers_once(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone_id, key, mock, subscription) = subscribed(store).await;
    let clock = ManualClock::starting_at(T0);
    let sender = sender(store, &clock, &key);
    mock.answer_next(vec![Reply::new(500), Reply::new(429).header("Retry-After", "30")]);
    let id = confirmation(store, &alice, &phone_id, 0).await;

    assert_eq!(sender.send_due().await.unwrap(), 1, "500: to retry");
    assert_eq!(store.push_delivery(&phone_id).await.unwrap(), Some((PushState::Pending, 1)));
    assert_eq!(sender.send_due().await.unwrap(), 0, "not due before its backoff");
    clock.advance_millis(1_000);
    assert_eq!(sender.send_due().await.unwrap(), 1, "429 with Retry-After: 30");
    clock.advance_millis(29_000);
    assert_eq!(sender.send_due().await.unwrap(), 0, "Retry-After is honoured");
    clock.advance_millis(1_000);
    assert_eq!(sender.send_due().await.unwrap(), 1, "201");
    assert_eq!(store.push_delivery(&phone_id).await.unwrap(), Some((PushState::Sent, 3)));
    clock.advance_millis(600_000);
    assert_eq!(sender.send_due().await.unwrap(), 0, "never sent again");
    assert_eq!(mock.requests(), 3);
    assert_eq!(mock.delivered(), vec![(subscription, payload(&id))], "refused: {:?}", mock.refusals());
}

async fn two_senders_deliver_each_push_exactly_once_and_take_over_a_dead_ones(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone_id, key, mock, _) = subscribed(store).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(confirmation(store, &alice, &phone_id, n).await);
    }
    let clock = ManualClock::starting_at(T0.plus_millis(150_000));
    // A sender claims two and dies before sending them.
    let dead = store.claim_pushes("dead", clock.now(), clock.now().plus_millis(60_000), 2).await.unwrap();
    assert_eq!(dead.len(), 2);
    let (a, b) = (sender(store, &clock, &key), sender(store, &clock, &key));
    let drain = |sender: Sender| tokio::spawn(async move { while sender.send_due().await.unwrap() > 0 {} });
    for task in [drain(a), drain(b)] {
        task.await.unwrap();
    }
    assert_eq!(mock.delivered().len(), 4, "the dead sender's two wait for its lease: {:?}", mock.refusals());
    clock.advance_millis(60_001);
    let c = sender(store, &clock, &key);
    while c.send_due().await.unwrap() > 0 {}
    let mut delivered: Vec<Vec<u8>> = mock.delivered().into_iter().map(|(_, payload)| payload).collect();
    delivered.sort();
    let mut expected: Vec<Vec<u8>> = ids.iter().map(|id| payload(id)).collect();
    expected.sort();
    assert_eq!(delivered, expected, "each once, none lost");
    assert!(!store.record_push_attempt(dead[0].id, "dead", clock.now(), PushAttempt::Sent).await.unwrap(), "too late");
}

async fn a_gone_subscription_is_dropped_unless_the_phone_subscribed_again(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone_id, key, mock, subscription) = subscribed(store).await;
    let clock = ManualClock::starting_at(T0);
    let sender = sender(store, &clock, &key);

    // The browser unsubscribed: the push service answers 410.
    mock.forget(&subscription);
    confirmation(store, &alice, &phone_id, 0).await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(store.push_delivery(&phone_id).await.unwrap(), Some((PushState::Gone, 1)));
    assert!(store.push_subscription(&phone_id).await.unwrap().is_none(), "dropped");
    assert!(!store.paired_phone_of_user(&alice).await.unwrap().unwrap().notifications, "the account area shows it off");
    clock.advance_millis(30_000);
    confirmation(store, &alice, &phone_id, 1).await;
    assert_eq!(store.push_delivery(&phone_id).await.unwrap(), Some((PushState::Kept, 0)), "no push service to call any more");
    assert_eq!(sender.send_due().await.unwrap(), 0);

    // A 404 for an old subscription while the phone already made a new one.
    let old = mock.subscribe();
    assert!(store.set_push_subscription(&phone_id, Some(&stored(&old)), T0).await.unwrap());
    confirmation(store, &alice, &phone_id, 2).await;
    let claimed = store.claim_pushes("s", T0.plus_millis(60_000), T0.plus_millis(120_000), 4).await.unwrap();
    let renewed = stored(&mock.subscribe());
    assert!(store.set_push_subscription(&phone_id, Some(&renewed), T0).await.unwrap());
    let gone = PushAttempt::Gone { endpoint: &stored(&old).endpoint, error: "404" };
    assert!(store.record_push_attempt(claimed[0].id, "s", T0.plus_millis(60_001), gone).await.unwrap());
    assert_eq!(store.push_subscription(&phone_id).await.unwrap(), Some(renewed), "the new subscription stays");
}
