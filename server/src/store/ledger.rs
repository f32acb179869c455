//! Transfers and beneficiaries: the effects of the sensitive actions.

use rusqlite::{params, Connection};

use super::Store;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::{Action, ActionOutcome, Amount};
use crate::store::Caller;

impl Store {
    /// Runs the action inside the transaction that consumed its session.
    pub(super) fn run_action(
        tx: &Connection,
        session_id: &str,
        caller: &Caller,
        action: &Action,
        now: Millis,
    ) -> Result<ActionOutcome> {
        let id = super::new_id();
        match action {
            Action::Transfer(t) => {
                tx.prepare_cached(
                    "INSERT INTO transfers (id, company_id, user_id, partner_id, sca_session_id, amount_cents,
                         currency, payee_name, iban, reference, status, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'settled', ?)",
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
                    now.0,
                ])?;
                Ok(ActionOutcome::Transfer(shared::Transfer {
                    id,
                    status: "settled".into(),
                    amount: t.amount.to_string(),
                    currency: t.currency.code().into(),
                    beneficiary: shared::BeneficiaryInput { name: t.payee.as_str().into(), iban: t.iban.as_str().into() },
                    reference: t.reference.as_ref().map(|r| r.as_str().into()),
                    created_at: now.to_rfc3339(),
                }))
            }
            Action::Beneficiary(b) => {
                tx.prepare_cached(
                    "INSERT INTO beneficiaries (id, company_id, sca_session_id, name, iban, created_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![id, caller.company_id, session_id, b.name.as_str(), b.iban.as_str(), now.0])?;
                Ok(ActionOutcome::Beneficiary(shared::Beneficiary {
                    id,
                    name: b.name.as_str().into(),
                    iban: b.iban.as_str().into(),
                    created_at: now.to_rfc3339(),
                }))
            }
        }
    }

    /// The company's transfers, newest first.
    pub async fn transfers_of_company(&self, company_id: &str, limit: u32) -> Result<Vec<shared::Transfer>> {
        type Row = (String, String, i64, String, String, String, Option<String>, i64);
        let rows: Vec<Row> = self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, status, amount_cents, currency, payee_name, iban, reference, created_at
                 FROM transfers WHERE company_id = ? ORDER BY created_at DESC, id LIMIT ?",
            )?;
            let rows = statement.query_map(params![company_id, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        }).await?;
        rows.into_iter()
            .map(|(id, status, cents, currency, name, iban, reference, created_at)| {
                Ok(shared::Transfer {
                    id,
                    status,
                    amount: Amount::from_cents(cents).map_err(|e| Error::Internal(format!("stored amount: {e}")))?.to_string(),
                    currency,
                    beneficiary: shared::BeneficiaryInput { name, iban },
                    reference,
                    created_at: Millis(created_at).to_rfc3339(),
                })
            })
            .collect()
    }
}
