//! The paired phone's live list of approvals (`GET /device/api/events`):
//! a stream of snapshots, each the whole list of what waits for the
//! phone's user, sent when it changes — a new approval appears at once, a
//! decided or expired one disappears.
//!
//! Across instances without a broker: each instance runs one poller (only
//! while a phone listens to it) that asks the database every
//! [`POLL`] which users' lists may have changed since it last looked
//! (`Store::phone_feed`: pushes written, `paired-device` sessions decided,
//! both read by index), and tells its listeners. A listener whose user is
//! named re-reads its list and sends it if it differs from the last one
//! sent; each tick it also drops what ran out by its own clock. So an
//! approval opened on one instance reaches a phone listening on another
//! within a poll and a read (about 300 ms), and the database sees one
//! small query per instance per tick however many phones listen, plus one
//! read per phone whose list changed. PostgreSQL's `LISTEN/NOTIFY` would
//! save the ticks but not the reads, needs a connection held per instance
//! outside the pool, and has no SQLite equivalent: the poll serves both.
//!
//! A snapshot carries its version (a hash of the ids in it): a phone that
//! reconnects with the version it last saw (`Last-Event-ID`) is sent the
//! list at once only if it changed meanwhile. Nothing is lost across a
//! reconnection, since every event is the whole list.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::Stream;
use sha2::{Digest, Sha256};
use shared::PhoneApproval;
use tokio::sync::broadcast;

use super::phone::approval;
use super::Sca;
use crate::clock::{Clock, Millis};
use crate::error::Result;
use crate::model::PairedPhone;
use crate::store::{FeedCursor, Store};

/// How often an instance asks which lists changed, while a phone listens.
pub const POLL: Duration = Duration::from_millis(250);

/// The phone's list at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Names this list: the `id` of its event.
    pub version: String,
    pub approvals: Vec<PhoneApproval>,
}

/// What one tick of the poller tells the listeners.
#[derive(Debug, Clone)]
enum Tick {
    /// Whose list may have changed (often no one).
    Users(Arc<[String]>),
    /// Everyone's: the poller (re)started reading.
    All,
}

/// One instance's feed: the poller, started by the first listener.
#[derive(Clone, Default)]
pub struct PhoneFeed(Arc<FeedInner>);

#[derive(Default)]
struct FeedInner {
    ticks: OnceLock<broadcast::Sender<Tick>>,
}

impl PhoneFeed {
    fn subscribe(&self, store: &Store, clock: &Arc<dyn Clock>) -> broadcast::Receiver<Tick> {
        let ticks = self.0.ticks.get_or_init(|| {
            let (sender, _) = broadcast::channel(64);
            tokio::spawn(poll(store.clone(), clock.clone(), sender.downgrade()));
            sender
        });
        ticks.subscribe()
    }
}

/// The instance's poller: quiet while no phone listens, ends with the
/// feed.
async fn poll(store: Store, clock: Arc<dyn Clock>, ticks: broadcast::WeakSender<Tick>) {
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor: Option<FeedCursor> = None;
    loop {
        interval.tick().await;
        let Some(ticks) = ticks.upgrade() else { return };
        if ticks.receiver_count() == 0 {
            // Read again from now when someone listens: each listener
            // starts from a fresh snapshot anyway.
            cursor = None;
            continue;
        }
        let read = match cursor {
            Some(cursor) => store.phone_feed(cursor).await.map(|(users, next)| (Tick::Users(users.into()), next)),
            // Listeners read their first list before this start: all read
            // again, or a change between the two would be missed.
            None => store.phone_feed_start(clock.now()).await.map(|start| (Tick::All, start)),
        };
        match read {
            Ok((tick, next)) => {
                cursor = Some(next);
                let _ = ticks.send(tick);
            }
            // A listener still drops what ran out; the next tick reads again.
            Err(e) => {
                tracing::warn!(error = %e, "the phone feed could not be read");
                let _ = ticks.send(Tick::Users(Arc::new([])));
            }
        }
    }
}

impl Sca {
    /// The phone's list as it changes: the first snapshot at once (unless
    /// its version is `last_seen`), then each one that differs. Ends when
    /// the phone is unpaired.
    pub fn phone_events(&self, phone: PairedPhone, last_seen: Option<String>) -> impl Stream<Item = Result<Snapshot>> + Send + 'static {
        let ticks = self.feed.subscribe(&self.store, &self.clock);
        let listener = Listener { sca: self.clone(), phone, ticks, sent: last_seen, ends_at: None, _gauge: Gauge::new() };
        futures_util::stream::unfold((listener, true), |(mut listener, mut read)| async move {
            loop {
                if read {
                    match listener.read().await {
                        Ok(None) => return None,
                        Ok(Some(snapshot)) if listener.sent.as_ref() == Some(&snapshot.version) => {}
                        Ok(Some(snapshot)) => {
                            listener.sent = Some(snapshot.version.clone());
                            return Some((Ok(snapshot), (listener, false)));
                        }
                        Err(e) => return Some((Err(e), (listener, false))),
                    }
                }
                read = match listener.ticks.recv().await {
                    Ok(Tick::All) => true,
                    Ok(Tick::Users(users)) => users.contains(&listener.phone.user_id) || listener.something_ran_out(),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
            }
        })
    }
}

struct Listener {
    sca: Sca,
    phone: PairedPhone,
    ticks: broadcast::Receiver<Tick>,
    /// The version last sent (or seen by the phone before it reconnected).
    sent: Option<String>,
    /// When the first approval of the last list read runs out.
    ends_at: Option<Millis>,
    _gauge: Gauge,
}

impl Listener {
    /// The list now, or `None` once the phone is no longer paired.
    async fn read(&mut self) -> Result<Option<Snapshot>> {
        let store = &self.sca.store;
        let paired = store.paired_phone_of_user(&self.phone.user_id).await?;
        if paired.is_none_or(|p| p.id != self.phone.id) {
            return Ok(None);
        }
        let now = self.sca.clock.now();
        let waiting = store.phone_approvals(&self.phone.user_id, now).await?;
        self.ends_at = waiting.iter().map(|(session, _)| session.expires_at).min();
        let mut hash = Sha256::new();
        for (session, _) in &waiting {
            hash.update(session.id.as_bytes());
            hash.update(b"\n");
        }
        let version = hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        let approvals = waiting.into_iter().map(|(session, partner)| approval(session, partner, now)).collect();
        Ok(Some(Snapshot { version, approvals }))
    }

    fn something_ran_out(&self) -> bool {
        self.ends_at.is_some_and(|at| at <= self.sca.clock.now())
    }
}

/// Counts the streams open on this instance.
struct Gauge;

impl Gauge {
    fn new() -> Self {
        metrics::gauge!("passgate_device_event_streams").increment(1.0);
        Gauge
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!("passgate_device_event_streams").decrement(1.0);
    }
}
