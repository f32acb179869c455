//! Company administration in the account area (admins): the report "users
//! within a company", the two-factor policy, removing a user's factor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::{CompanyReport, CompanyUser, FactorUse, PasskeyInfo, PolicyInput};

use super::account::SignedIn;
use super::extract::{AppJson, AppPath, Client};
use super::AppState;
use crate::account::UserFactors;
use crate::error::{Error, Result};
use crate::model::{PasskeySummary, TwoFactorPolicy};

pub async fn report(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<CompanyReport>> {
    let report = app.accounts.company_report(&current).await?;
    Ok(Json(CompanyReport {
        name: report.company.name,
        two_factor: report.company.two_factor.as_str().to_owned(),
        users: report.users.into_iter().map(company_user).collect(),
    }))
}

pub async fn set_policy(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppJson(input): AppJson<PolicyInput>,
) -> Result<StatusCode> {
    let policy = TwoFactorPolicy::parse(&input.two_factor)
        .ok_or_else(|| Error::Validation { field: "two_factor".into(), message: "must be opt_in or forced".into() })?;
    app.accounts.set_two_factor_policy(&current, policy, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_totp(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppPath(user_id): AppPath<String>,
) -> Result<StatusCode> {
    app.accounts.remove_user_totp(&current, &user_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_passkey(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppPath((user_id, passkey_id)): AppPath<(String, String)>,
) -> Result<StatusCode> {
    app.accounts.remove_user_passkey(&current, &user_id, &passkey_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An admin's reset of a user's paired phone (a lost phone): its passkey
/// and device credential end, and the user may pair another.
pub async fn reset_phone(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppPath(user_id): AppPath<String>,
) -> Result<StatusCode> {
    app.accounts.reset_user_phone(&current, &user_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn company_user(factors: UserFactors) -> CompanyUser {
    CompanyUser {
        id: factors.user.id,
        display_name: factors.user.display_name,
        email: factors.user.email.map(|e| e.as_str().to_owned()),
        role: factors.user.role.as_str().to_owned(),
        authenticator_app: factors.totp.map(|t| FactorUse {
            added_at: t.confirmed_at.unwrap_or(t.created_at).to_rfc3339(),
            last_used_at: t.last_used_at.map(|at| at.to_rfc3339()),
        }),
        passkeys: factors.passkeys.into_iter().map(passkey_info).collect(),
        paired_phone: factors
            .phone
            .map(|p| FactorUse { added_at: p.paired_at.to_rfc3339(), last_used_at: p.last_used_at.map(|at| at.to_rfc3339()) }),
    }
}

pub fn passkey_info(passkey: PasskeySummary) -> PasskeyInfo {
    PasskeyInfo {
        id: passkey.id,
        name: passkey.name,
        added_at: passkey.created_at.to_rfc3339(),
        last_used_at: passkey.last_used_at.map(|at| at.to_rfc3339()),
        synced: passkey.backed_up,
    }
}
