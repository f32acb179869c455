//! The replay of an approved request and its effects (transfers and
//! beneficiaries), written once for both databases: the session is
//! consumed by a compare-and-set, the action runs and its response is
//! remembered for the idempotency key, in one durable transaction.

use super::rows::TransferRow;
use super::sql::{End, Kind, Tx};
use super::{run, KeyWindow, RememberedResponse, Replay, ReplayOutcome, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::ledger::{Action, Created, TRANSFER_STATUS};
use crate::model::{Caller, Fingerprint, State};

impl Store {
    /// The replay, in one transaction: consume the session if (and only
    /// if) it is allowed, fresh, the caller's and bound to this request,
    /// then run the action and remember its response for the idempotency
    /// key. Concurrent replays of one session never both run (the
    /// consumption is a compare-and-set on its state), nor two replays
    /// with one key (the key is claimed first; see [`consume_and_run`]).
    pub async fn consume_and_run(&self, replay: Replay<'_>) -> StoreResult<ReplayOutcome> {
        run!(self, Kind::Durable, |tx| consume_and_run(tx, &replay))
    }

    /// The response remembered for the partner's idempotency key, if any
    /// (answered, status 201, within the window: a claim still running,
    /// status 0, is none).
    pub async fn remembered_response(&self, partner_id: &str, key: KeyWindow<'_>) -> StoreResult<Option<RememberedResponse>> {
        run!(self, Kind::ReadOne, |tx| async { remembered(tx, partner_id, key).await.map(End::Commit) })
    }

    /// The company's transfers, newest first.
    pub async fn transfers_of_company(&self, company_id: &str, limit: u32) -> StoreResult<Vec<shared::Transfer>> {
        run!(self, Kind::Read, |tx| transfers_of_company(tx, company_id, limit))
    }
}

/// The replay. An idempotency key is claimed first (its row inserted, or a
/// row past its window taken over): a concurrent replay with the same key
/// waits on that row (PostgreSQL; SQLite's writers take turns), then reads
/// the answer it holds. A key answered already refuses before anything
/// else; a session not consumed gives the claim back (the rollback). As
/// many statements as a replay without the claim took: the claim replaces
/// the look-up of the key, the answer's update its upsert.
async fn consume_and_run(tx: &impl Tx, replay: &Replay<'_>) -> StoreResult<End<ReplayOutcome>> {
    let caller = replay.caller;
    let owner = &caller.owner;
    if let Some(key) = replay.idempotency {
        let claimed = tx
            .execute(
                "INSERT INTO idempotency_keys (partner_id, key, user_id, fingerprint, status, body, created_at)
                 VALUES ($1, $2, $3, $4, 0, '', $5)
                 ON CONFLICT (partner_id, key) DO UPDATE
                 SET user_id = excluded.user_id, fingerprint = excluded.fingerprint, status = 0, body = '', created_at = excluded.created_at
                 WHERE idempotency_keys.created_at < $6",
                &[
                    owner.partner_id.as_str().into(),
                    key.key.into(),
                    owner.user_id.as_str().into(),
                    replay.fingerprint.0[..].into(),
                    replay.now.0.into(),
                    key.not_before.0.into(),
                ],
            )
            .await?;
        if claimed == 0 {
            // Nothing written: the key is within its window.
            let remembered = remembered(tx, &owner.partner_id, key).await?;
            return Ok(End::Rollback(match remembered {
                Some(r) if r.answers(owner, replay.fingerprint) => ReplayOutcome::Remembered(r.created),
                _ => ReplayOutcome::KeyReused,
            }));
        }
    }
    let consumed = tx
        .query_opt(
            "UPDATE sca_sessions SET state = $6, consumed_at = $1
             WHERE token_hash = $2 AND partner_id = $3 AND user_id = $4 AND fingerprint = $5 AND state = $7 AND expires_at > $1
             RETURNING id",
            &[
                replay.now.0.into(),
                replay.token_hash.0[..].into(),
                owner.partner_id.as_str().into(),
                owner.user_id.as_str().into(),
                replay.fingerprint.0[..].into(),
                State::Consumed.as_str().into(),
                State::Allow.as_str().into(),
            ],
        )
        .await?;
    // Nothing consumed: the claim of the key goes with the rollback.
    let Some(consumed) = consumed else { return Ok(End::Rollback(ReplayOutcome::Refused)) };
    let session_id: String = consumed.get(0)?;
    let created = run_action(tx, &session_id, caller, replay.action, replay.now).await?;
    if let Some(key) = replay.idempotency {
        tx.execute(
            "UPDATE idempotency_keys SET status = 201, body = $3 WHERE partner_id = $1 AND key = $2",
            &[owner.partner_id.as_str().into(), key.key.into(), created.0.as_str().into()],
        )
        .await?;
    }
    Ok(End::Commit(ReplayOutcome::Ran(created)))
}

/// The answered response of the partner's key, within its window.
async fn remembered(tx: &impl Tx, partner_id: &str, key: KeyWindow<'_>) -> StoreResult<Option<RememberedResponse>> {
    let row = tx
        .query_opt(
            "SELECT user_id, fingerprint, body FROM idempotency_keys WHERE partner_id = $1 AND key = $2 AND created_at >= $3 AND status = 201",
            &[partner_id.into(), key.key.into(), key.not_before.0.into()],
        )
        .await?;
    row.map(|r| {
        let fingerprint: Vec<u8> = r.get(1)?;
        let fingerprint = fingerprint.try_into().map_err(|_| StoreError::Corrupt("an idempotency fingerprint".into()))?;
        Ok(RememberedResponse { user_id: r.get(0)?, fingerprint: Fingerprint(fingerprint), created: Created(r.get(2)?) })
    })
    .transpose()
}

/// Runs the action inside the transaction that consumed its session.
async fn run_action(tx: &impl Tx, session_id: &str, caller: &Caller, action: &Action, now: Millis) -> StoreResult<Created> {
    // UUIDv7: time-ordered, new rows land on the same few index pages.
    let id = uuid::Uuid::now_v7().to_string();
    match action {
        Action::Transfer(t) => {
            tx.execute(
                "INSERT INTO transfers (id, company_id, user_id, partner_id, sca_session_id, amount_cents, currency, payee_name,
                     iban, reference, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    id.as_str().into(),
                    caller.company_id.as_str().into(),
                    caller.owner.user_id.as_str().into(),
                    caller.owner.partner_id.as_str().into(),
                    session_id.into(),
                    t.amount.cents().into(),
                    t.currency.code().into(),
                    t.payee.as_str().into(),
                    t.iban.as_str().into(),
                    t.reference.as_ref().map(|r| r.as_str()).into(),
                    TRANSFER_STATUS.into(),
                    now.0.into(),
                ],
            )
            .await?;
        }
        Action::Beneficiary(b) => {
            tx.execute(
                "INSERT INTO beneficiaries (id, company_id, sca_session_id, name, iban, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    id.as_str().into(),
                    caller.company_id.as_str().into(),
                    session_id.into(),
                    b.name.as_str().into(),
                    b.iban.as_str().into(),
                    now.0.into(),
                ],
            )
            .await?;
        }
    }
    Ok(action.created(id, now)?)
}

async fn transfers_of_company(tx: &impl Tx, company_id: &str, limit: u32) -> StoreResult<End<Vec<shared::Transfer>>> {
    let rows = tx
        .query(
            "SELECT id, status, amount_cents, currency, payee_name, iban, reference, created_at
             FROM transfers WHERE company_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            &[company_id.into(), limit.into()],
        )
        .await?;
    let transfers = rows
        .iter()
        .map(|r| {
            TransferRow {
                id: r.get(0)?,
                status: r.get(1)?,
                cents: r.get(2)?,
                currency: r.get(3)?,
                name: r.get(4)?,
                iban: r.get(5)?,
                reference: r.get(6)?,
                created_at: r.get(7)?,
            }
            .parse()
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(transfers))
}
