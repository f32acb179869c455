//! A company's policy, its users' factors (the admins' report) and the
//! removals of a factor; each operation written once for both databases.

use super::directory::user_record;
use super::rows::{backed_up, USER_COLUMNS};
use super::sql::{Dialect, End, Kind, Tx};
use super::{audit, outbox, run, Removal, Removed, Scope, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, Company, PasskeySummary, TotpFactor, TwoFactorPolicy, UserRecord};

impl Store {
    /// The company with this id.
    pub async fn company(&self, company_id: &str) -> StoreResult<Option<Company>> {
        run!(self, Kind::Read, |tx| company(tx, company_id))
    }

    /// Sets the company's two-factor policy, logged.
    pub async fn set_two_factor_policy(&self, company_id: &str, policy: TwoFactorPolicy, audit: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| set_two_factor_policy(tx, company_id, policy, audit))
    }

    /// The company's users, by name.
    pub async fn users_of_company(&self, company_id: &str) -> StoreResult<Vec<UserRecord>> {
        run!(self, Kind::Read, |tx| users_of_company(tx, company_id))
    }

    /// The authenticator apps (confirmed or pending) of the company's users.
    pub async fn totp_of_company(&self, company_id: &str) -> StoreResult<Vec<(String, TotpFactor)>> {
        run!(self, Kind::Read, |tx| totp_of_company(tx, company_id))
    }

    /// The passkeys of a user, or of a company's users, oldest first.
    pub async fn passkey_summaries(&self, scope: Scope<'_>) -> StoreResult<Vec<PasskeySummary>> {
        run!(self, Kind::Read, |tx| passkey_summaries(tx, scope))
    }

    /// Renames one of the user's passkeys; false if not theirs.
    pub async fn rename_passkey(&self, user_id: &str, passkey_id: &str, name: &str) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| rename_passkey(tx, user_id, passkey_id, name))
    }

    /// Removes the user's authenticator app and recovery codes (see
    /// [`Removal`]); "never the last factor" is checked in the delete,
    /// under the user's row lock.
    pub async fn remove_totp(&self, removal: Removal<'_>) -> StoreResult<Removed> {
        run!(self, Kind::Durable, |tx| remove_totp(tx, &removal))
    }

    /// Removes one of the user's passkeys (see [`Removal`]); "never the
    /// last factor" is checked under the user's row lock, so that two
    /// concurrent removals cannot both pass it.
    pub async fn remove_passkey(&self, passkey_id: &str, removal: Removal<'_>) -> StoreResult<Removed> {
        run!(self, Kind::Durable, |tx| remove_passkey(tx, passkey_id, &removal))
    }
}

async fn company(tx: &impl Tx, company_id: &str) -> StoreResult<End<Option<Company>>> {
    let row = tx.query_opt("SELECT id, name, two_factor FROM companies WHERE id = $1", &[company_id.into()]).await?;
    let company = row
        .map(|r| {
            let policy: String = r.get(2)?;
            let two_factor =
                TwoFactorPolicy::parse(&policy).ok_or_else(|| StoreError::Corrupt(format!("unknown two-factor policy {policy:?}")))?;
            Ok::<_, StoreError>(Company { id: r.get(0)?, name: r.get(1)?, two_factor })
        })
        .transpose()?;
    Ok(End::Commit(company))
}

async fn set_two_factor_policy(tx: &impl Tx, company_id: &str, policy: TwoFactorPolicy, event: &AuditEvent) -> StoreResult<End<()>> {
    tx.execute("UPDATE companies SET two_factor = $1 WHERE id = $2", &[policy.as_str().into(), company_id.into()]).await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(()))
}

async fn users_of_company(tx: &impl Tx, company_id: &str) -> StoreResult<End<Vec<UserRecord>>> {
    let rows = tx
        .query(&format!("SELECT {USER_COLUMNS} FROM users WHERE company_id = $1 ORDER BY display_name, id"), &[company_id.into()])
        .await?;
    Ok(End::Commit(rows.iter().map(user_record).collect::<StoreResult<_>>()?))
}

async fn totp_of_company(tx: &impl Tx, company_id: &str) -> StoreResult<End<Vec<(String, TotpFactor)>>> {
    let rows = tx
        .query(
            "SELECT t.user_id, t.sealed_key, t.created_at, t.confirmed_at, t.last_used_at, t.locked_until, t.last_step, t.next_created_at
             FROM totp_factors t JOIN users u ON u.id = t.user_id WHERE u.company_id = $1",
            &[company_id.into()],
        )
        .await?;
    let at = |t: Option<i64>| t.map(Millis);
    let apps = rows
        .iter()
        .map(|r| {
            let app = TotpFactor {
                sealed_key: r.get(1)?,
                created_at: Millis(r.get(2)?),
                confirmed_at: at(r.get(3)?),
                last_used_at: at(r.get(4)?),
                locked_until: at(r.get(5)?),
                last_step: r.get(6)?,
                replacing_since: at(r.get(7)?),
            };
            Ok((r.get(0)?, app))
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(apps))
}

async fn passkey_summaries(tx: &impl Tx, scope: Scope<'_>) -> StoreResult<End<Vec<PasskeySummary>>> {
    let (join, condition, id) = match scope {
        Scope::User(id) => ("", "p.user_id = $1", id),
        Scope::Company(id) => ("JOIN users u ON u.id = p.user_id", "u.company_id = $1", id),
    };
    let rows = tx
        .query(
            &format!(
                "SELECT p.id, p.user_id, p.name, p.created_at, p.last_used_at, p.passkey
                 FROM passkeys p {join} WHERE {condition} ORDER BY p.created_at, p.id"
            ),
            &[id.into()],
        )
        .await?;
    let passkeys = rows
        .iter()
        .map(|r| {
            let passkey: String = r.get(5)?;
            Ok(PasskeySummary {
                id: r.get(0)?,
                user_id: r.get(1)?,
                name: r.get(2)?,
                created_at: Millis(r.get(3)?),
                last_used_at: r.get::<Option<i64>>(4)?.map(Millis),
                backed_up: backed_up(&passkey)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(passkeys))
}

async fn rename_passkey(tx: &impl Tx, user_id: &str, passkey_id: &str, name: &str) -> StoreResult<End<bool>> {
    let renamed = tx
        .execute("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3", &[name.into(), passkey_id.into(), user_id.into()])
        .await?;
    Ok(End::Commit(renamed == 1))
}

/// Orders the removals of the user's factors: the guarded delete that
/// follows then reads what the other one left.
async fn lock_user(tx: &impl Tx, user_id: &str) -> StoreResult<()> {
    match tx.dialect() {
        // One writer at a time: the check and the delete are one step.
        Dialect::Sqlite => {}
        // The user's row lock; READ COMMITTED takes a new snapshot per
        // statement, so the delete sees the other removal's commit.
        Dialect::Postgres => {
            tx.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[user_id.into()]).await?;
        }
    }
    Ok(())
}

async fn remove_totp(tx: &impl Tx, removal: &Removal<'_>) -> StoreResult<End<Removed>> {
    let user_id = removal.user_id;
    lock_user(tx, user_id).await?;
    let removed = tx
        .execute(
            "DELETE FROM totp_factors WHERE user_id = $1 AND (NOT $2 OR (SELECT passkey_count FROM users WHERE id = $1) > 0)",
            &[user_id.into(), removal.keep_one.into()],
        )
        .await?
        == 1;
    if !removed {
        // Nothing was written.
        let exists = tx.query_opt("SELECT 1 FROM totp_factors WHERE user_id = $1", &[user_id.into()]).await?.is_some();
        return Ok(End::Commit(if exists { Removed::LastFactor } else { Removed::Absent }));
    }
    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[user_id.into()]).await?;
    removed_with(tx, removal).await
}

async fn remove_passkey(tx: &impl Tx, passkey_id: &str, removal: &Removal<'_>) -> StoreResult<End<Removed>> {
    let user_id = removal.user_id;
    lock_user(tx, user_id).await?;
    let removed = tx
        .query_opt(
            "DELETE FROM passkeys WHERE id = $1 AND user_id = $2
               AND (NOT $3 OR (SELECT passkey_count FROM users WHERE id = $2)
                   + (SELECT COUNT(*) FROM totp_factors WHERE user_id = $2 AND confirmed_at IS NOT NULL) > 1)
             RETURNING credential_id",
            &[passkey_id.into(), user_id.into(), removal.keep_one.into()],
        )
        .await?;
    let Some(removed) = removed else {
        // Nothing was written.
        let exists =
            tx.query_opt("SELECT 1 FROM passkeys WHERE id = $1 AND user_id = $2", &[passkey_id.into(), user_id.into()]).await?.is_some();
        return Ok(End::Commit(if exists { Removed::LastFactor } else { Removed::Absent }));
    };
    let credential_id: Vec<u8> = removed.get(0)?;
    tx.execute("UPDATE users SET passkey_count = passkey_count - 1 WHERE id = $1 AND passkey_count > 0", &[user_id.into()]).await?;
    tx.execute(
        "INSERT INTO credential_registry (user_id, credential_id, event, at) VALUES ($1, $2, 'removed', $3)",
        &[user_id.into(), credential_id.as_slice().into(), removal.notice.audit.at.0.into()],
    )
    .await?;
    removed_with(tx, removal).await
}

/// What goes with a removed factor: the user's other browser sessions and
/// every trusted browser; the SMS notice and the audit event.
async fn removed_with(tx: &impl Tx, removal: &Removal<'_>) -> StoreResult<End<Removed>> {
    let user_id = removal.user_id;
    let keep: &[u8] = removal.keep_session.map_or(&[], |k| &k.0[..]);
    tx.execute("DELETE FROM browser_sessions WHERE user_id = $1 AND token_hash <> $2", &[user_id.into(), keep.into()]).await?;
    tx.execute("DELETE FROM trusted_browsers WHERE user_id = $1", &[user_id.into()]).await?;
    outbox::insert(tx, removal.notice.sms).await?;
    audit::append(tx, removal.notice.audit, None).await?;
    Ok(End::Commit(Removed::Yes))
}
