//! The directory (`store/directory.rs`): companies, users and their
//! credentials, and the look-ups of a user.

use futures::future::join_all;

use super::*;
use crate::email::Email;
use crate::model::Role;

backends! {
    companies_are_unique_by_name_under_concurrent_writers,
    credentials_are_kept_and_an_email_signs_in_one_user_only,
    a_user_is_found_by_email,
    a_user_is_found_by_webauthn_handle,
}

async fn companies_are_unique_by_name_under_concurrent_writers(fixture: Fixture) {
    let tasks = (0..20).map(|_| {
        let store = fixture.store.clone();
        tokio::spawn(async move { store.ensure_company("Same SAS", T0).await.unwrap() })
    });
    let ids: std::collections::HashSet<String> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), 1);
}

async fn credentials_are_kept_and_an_email_signs_in_one_user_only(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let email = Email::parse("alice@example.com").unwrap();
    let set = store.set_credentials(&w.alice.user_id, &email, &hash_of("a"), Role::Admin).await.unwrap();
    assert_eq!(set, CredentialsSet::Yes);
    let alice = store.user(&w.alice.user_id).await.unwrap().unwrap();
    assert_eq!((alice.email.as_ref(), alice.password.as_ref(), alice.role), (Some(&email), Some(&hash_of("a")), Role::Admin));
    // Another user cannot take the email; the refusal changes nothing.
    let taken = store.set_credentials(&w.bob.user_id, &email, &hash_of("b"), Role::Member).await.unwrap();
    assert_eq!(taken, CredentialsSet::EmailInUse);
    let bob = store.user(&w.bob.user_id).await.unwrap().unwrap();
    assert_eq!((bob.email, bob.password, bob.role), (None, None, Role::Member));
    // The owner may set new ones.
    assert_eq!(store.set_credentials(&w.alice.user_id, &email, &hash_of("c"), Role::Member).await.unwrap(), CredentialsSet::Yes);
}

async fn a_user_is_found_by_email(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let email = Email::parse("alice@example.com").unwrap();
    store.set_credentials(&w.alice.user_id, &email, &hash_of("a"), Role::Admin).await.unwrap();
    let found = store.user_by_email(&email).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.role), (w.alice.user_id.as_str(), Role::Admin));
    assert!(store.user_by_email(&Email::parse("bob@example.com").unwrap()).await.unwrap().is_none());
}

async fn a_user_is_found_by_webauthn_handle(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = store.user(&w.alice.user_id).await.unwrap().unwrap();
    let found = store.user_by_webauthn_handle(&alice.webauthn_handle).await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert!(store.user_by_webauthn_handle(&uuid::Uuid::new_v4()).await.unwrap().is_none());
}
