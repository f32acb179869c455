//! Transfers and beneficiaries: the effects of the sensitive actions.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::ledger::{Action, Created, TRANSFER_STATUS};
use crate::model::Caller;
use crate::store::rows::TransferRow;
use crate::store::StoreResult;

/// Runs the action inside the transaction that consumed its session.
pub(super) fn run_action(tx: &Connection, session_id: &str, caller: &Caller, action: &Action, now: Millis) -> StoreResult<Created> {
    let id = super::new_id();
    match action {
        Action::Transfer(t) => {
            tx.prepare_cached(
                "INSERT INTO transfers (id, company_id, user_id, partner_id, sca_session_id, amount_cents,
                     currency, payee_name, iban, reference, status, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                id,
                caller.company_id,
                caller.owner.user_id,
                caller.owner.partner_id,
                session_id,
                t.amount.cents(),
                t.currency.code(),
                t.payee.as_str(),
                t.iban.as_str(),
                t.reference.as_ref().map(|r| r.as_str()),
                TRANSFER_STATUS,
                now.0,
            ])?;
        }
        Action::Beneficiary(b) => {
            tx.prepare_cached(
                "INSERT INTO beneficiaries (id, company_id, sca_session_id, name, iban, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![id, caller.company_id, session_id, b.name.as_str(), b.iban.as_str(), now.0])?;
        }
    }
    Ok(action.created(id, now)?)
}

/// The company's transfers, newest first.
pub(super) fn transfer_rows(conn: &Connection, company_id: &str, limit: u32) -> StoreResult<Vec<TransferRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, status, amount_cents, currency, payee_name, iban, reference, created_at
         FROM transfers WHERE company_id = ? ORDER BY created_at DESC, id LIMIT ?",
    )?;
    let rows = statement.query_map(params![company_id, limit], |r| {
        Ok(TransferRow {
            id: r.get(0)?,
            status: r.get(1)?,
            cents: r.get(2)?,
            currency: r.get(3)?,
            name: r.get(4)?,
            iban: r.get(5)?,
            reference: r.get(6)?,
            created_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
