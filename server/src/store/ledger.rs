//! Transfers and beneficiaries: the effects of the sensitive actions.

use sqlx::Row;

use super::Store;
use crate::clock::Millis;
use crate::error::Result;
use crate::ledger::{Action, ActionOutcome, Amount};
use crate::store::Caller;

impl Store {
    /// Runs the action inside the transaction that consumed its session.
    pub(super) async fn run_action(
        tx: &mut sqlx::SqliteConnection,
        session_id: &str,
        caller: &Caller,
        action: &Action,
        now: Millis,
    ) -> Result<ActionOutcome> {
        let id = super::new_id();
        match action {
            Action::Transfer(t) => {
                sqlx::query(
                    "INSERT INTO transfers (id, company_id, user_id, partner_id, sca_session_id, amount_cents,
                         currency, payee_name, iban, reference, status, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'settled', ?)",
                )
                .bind(&id)
                .bind(&caller.company_id)
                .bind(&caller.owner.user_id)
                .bind(&caller.owner.partner_id)
                .bind(session_id)
                .bind(t.amount.cents())
                .bind(t.currency.code())
                .bind(t.payee.as_str())
                .bind(t.iban.as_str())
                .bind(t.reference.as_ref().map(|r| r.as_str()))
                .bind(now.0)
                .execute(tx)
                .await?;
                Ok(ActionOutcome::Transfer(shared::Transfer {
                    id,
                    status: "settled".into(),
                    amount: t.amount.to_string(),
                    currency: t.currency.code().into(),
                    beneficiary: shared::BeneficiaryInput {
                        name: t.payee.as_str().into(),
                        iban: t.iban.as_str().into(),
                    },
                    reference: t.reference.as_ref().map(|r| r.as_str().into()),
                    created_at: now.to_rfc3339(),
                }))
            }
            Action::Beneficiary(b) => {
                sqlx::query(
                    "INSERT INTO beneficiaries (id, company_id, sca_session_id, name, iban, created_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(&caller.company_id)
                .bind(session_id)
                .bind(b.name.as_str())
                .bind(b.iban.as_str())
                .bind(now.0)
                .execute(tx)
                .await?;
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
        let rows = sqlx::query(
            "SELECT id, status, amount_cents, currency, payee_name, iban, reference, created_at
             FROM transfers WHERE company_id = ? ORDER BY created_at DESC, id LIMIT ?",
        )
        .bind(company_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let cents: i64 = r.try_get("amount_cents")?;
                Ok(shared::Transfer {
                    id: r.try_get("id")?,
                    status: r.try_get("status")?,
                    amount: Amount::from_cents(cents)
                        .map_err(|e| crate::error::Error::Internal(format!("stored amount: {e}")))?
                        .to_string(),
                    currency: r.try_get("currency")?,
                    beneficiary: shared::BeneficiaryInput { name: r.try_get("payee_name")?, iban: r.try_get("iban")? },
                    reference: r.try_get("reference")?,
                    created_at: Millis(r.try_get("created_at")?).to_rfc3339(),
                })
            })
            .collect()
    }
}
