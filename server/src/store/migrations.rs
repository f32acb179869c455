//! The schema's one history, shared by both backends: step N of
//! [`MIGRATIONS`] has a body for SQLite and one for PostgreSQL, and a
//! database at version N has the same tables, columns, keys and indexes on
//! either (tested: `schemas.rs`).
//!
//! A step with nothing to do on one backend carries an empty body there,
//! recorded as applied like any other. Steps 1 and 2 predate the
//! PostgreSQL backend: there they are empty, and its step 3 creates at once
//! the schema SQLite reached through steps 1 to 3; the versions mean the
//! same schema on both from 3 on.
//!
//! Each database records the steps applied in `passgate_migrations`
//! (version, name, SHA-256 of the body applied, time), and every start
//! compares it with this list: an applied step whose body has changed
//! since, or a version this list does not know (a newer Passgate), stops
//! the start with an error naming it. A migration once released is never
//! edited: a change is a new step.

use sha2::{Digest, Sha256};

/// One step of the schema's history.
pub(super) struct Migration {
    /// Its position, from 1: `passgate_migrations.version`.
    pub version: i32,
    pub name: &'static str,
    /// The body on SQLite (empty: nothing to do there).
    pub sqlite: &'static str,
    /// The body on PostgreSQL (empty: nothing to do there).
    pub postgres: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

macro_rules! step {
    ($version:literal, $name:literal, sqlite: $sqlite:literal, postgres: $postgres:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $sqlite)),
            postgres: include_str!(concat!("../../migrations/postgres/", $postgres)),
        }
    };
    ($version:literal, $name:literal, sqlite: $sqlite:literal, postgres: none) => {
        Migration { version: $version, name: $name, sqlite: include_str!(concat!("../../migrations/sqlite/", $sqlite)), postgres: "" }
    };
}

/// The schema, in order. Files are numbered by their step on both
/// backends; a step without a file on a backend has nothing to do there.
pub(super) const MIGRATIONS: &[Migration] = &[
    step!(1, "initial", sqlite: "0001_initial.sql", postgres: none),
    step!(2, "ceremonies_without_rowid", sqlite: "0002_ceremonies_without_rowid.sql", postgres: none),
    step!(3, "production_core", sqlite: "0003_production_core.sql", postgres: "0003_schema.sql"),
    step!(4, "accounts", sqlite: "0004_accounts.sql", postgres: "0004_accounts.sql"),
    step!(5, "account_security", sqlite: "0005_account_security.sql", postgres: "0005_account_security.sql"),
    step!(6, "sms_otp", sqlite: "0006_sms_otp.sql", postgres: "0006_sms_otp.sql"),
    step!(7, "step_up", sqlite: "0007_step_up.sql", postgres: "0007_step_up.sql"),
    step!(8, "credential_registry", sqlite: "0008_credential_registry.sql", postgres: "0008_credential_registry.sql"),
    step!(9, "totp_lock_series", sqlite: "0009_totp_lock_series.sql", postgres: "0009_totp_lock_series.sql"),
    step!(10, "user_failures", sqlite: "0010_user_failures.sql", postgres: "0010_user_failures.sql"),
    step!(11, "audit_chain", sqlite: "0011_audit_chain.sql", postgres: "0011_audit_chain.sql"),
    step!(12, "self_service", sqlite: "0012_self_service.sql", postgres: "0012_self_service.sql"),
    step!(13, "passkeys_by_user_and_time", sqlite: "0013_passkeys_by_user_and_time.sql", postgres: none),
    step!(14, "trusted_browsers", sqlite: "0014_trusted_browsers.sql", postgres: "0014_trusted_browsers.sql"),
    step!(15, "chains_linked_after_commit", sqlite: "0015_chains_linked_after_commit.sql", postgres: "0015_chains_linked_after_commit.sql"),
    step!(16, "paired_phones", sqlite: "0016_paired_phones.sql", postgres: "0016_paired_phones.sql"),
    step!(17, "push_outbox", sqlite: "0017_push_outbox.sql", postgres: "0017_push_outbox.sql"),
    step!(18, "phone_confirmations", sqlite: "0018_phone_confirmations.sql", postgres: "0018_phone_confirmations.sql"),
    step!(19, "sms_delivery", sqlite: "0019_sms_delivery.sql", postgres: "0019_sms_delivery.sql"),
    step!(20, "push_delivery", sqlite: "0020_push_delivery.sql", postgres: "0020_push_delivery.sql"),
    step!(21, "phone_feed", sqlite: "0021_phone_feed.sql", postgres: "0021_phone_feed.sql"),
];

impl Migration {
    pub fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    /// SHA-256 of the body on `backend`, in lowercase hex.
    pub fn checksum(&self, backend: Backend) -> String {
        Sha256::digest(self.sql(backend).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The step as error messages name it: "migration 7 (step_up)".
    pub fn label(&self) -> String {
        format!("migration {} ({})", self.version, self.name)
    }
}

/// The number of steps this Passgate knows.
pub(super) fn known() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Checks a database's history (its `(version, checksum)` rows, by
/// version) against [`MIGRATIONS`]: the applied steps must be a prefix of
/// the list, each with the checksum of this Passgate's body. Answers how
/// many are applied.
pub(super) fn check_applied(applied: &[(i32, String)], backend: Backend) -> anyhow::Result<usize> {
    if let Some(&(newest, _)) = applied.last() {
        if newest > known() {
            anyhow::bail!("the database was migrated by a newer Passgate (schema {newest}, this one knows {})", known());
        }
    }
    for (index, (version, checksum)) in applied.iter().enumerate() {
        let step = &MIGRATIONS[index];
        anyhow::ensure!(
            *version == step.version,
            "the database's migration history skips {} (it records {version} next): it was not migrated by Passgate",
            step.label()
        );
        anyhow::ensure!(
            *checksum == step.checksum(backend),
            "{} was changed after it was applied to this database (its recorded checksum {checksum} is not this \
             Passgate's {}): restore the migration's text, and make any change a new migration",
            step.label(),
            step.checksum(backend)
        );
    }
    Ok(applied.len())
}

/// How many steps of the new sequence an older Passgate's PostgreSQL
/// history stands for. Before the shared sequence, PostgreSQL numbered its
/// own files 1 to 10 (`passgate_migrations` without a checksum): its
/// version 1 created the schema SQLite reached at step 3, and its version
/// v is step v + 2 since. So versions 1..=v applied are steps 1..=v + 2
/// (steps 1 and 2 are empty on PostgreSQL). SQLite's `user_version` always
/// counted the steps of this very list: it maps as it is.
pub(super) const fn legacy_postgres_steps(version: i32) -> i32 {
    if version == 0 {
        0
    } else {
        version + 2
    }
}

/// The versions PostgreSQL numbered itself, before the shared sequence.
pub(super) const LEGACY_POSTGRES_VERSIONS: i32 = 10;
/// The steps SQLite counted in `user_version` before it kept a history.
pub(super) const LEGACY_SQLITE_VERSIONS: i32 = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_from_one_without_gaps() {
        for (index, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i32::try_from(index + 1).unwrap(), "{}", step.name);
        }
    }

    #[test]
    fn the_older_postgres_numbering_maps_onto_the_sequence() {
        assert_eq!(legacy_postgres_steps(0), 0);
        assert_eq!(legacy_postgres_steps(1), 3);
        assert_eq!(legacy_postgres_steps(LEGACY_POSTGRES_VERSIONS), LEGACY_SQLITE_VERSIONS);
        // Their last versions were the same step: the same body's name.
        assert_eq!(MIGRATIONS[2].postgres.lines().nth(1), Some("-- the same tables and rules as the SQLite schema after its migration 3."));
        assert!(MIGRATIONS[..2].iter().all(|m| m.postgres.is_empty()));
    }

    #[test]
    fn a_changed_migration_is_named() {
        let mut applied: Vec<(i32, String)> = MIGRATIONS[..4].iter().map(|m| (m.version, m.checksum(Backend::Sqlite))).collect();
        assert_eq!(check_applied(&applied, Backend::Sqlite).unwrap(), 4);
        applied[3].1 = "00".repeat(32);
        let err = check_applied(&applied, Backend::Sqlite).unwrap_err().to_string();
        assert!(err.contains("migration 4 (accounts) was changed"), "{err}");
        // The other backend's body is another text.
        assert!(check_applied(&applied[..3], Backend::Postgres).is_err());
    }

    #[test]
    fn a_newer_passgate_and_a_gap_are_refused() {
        let newer = [(1, MIGRATIONS[0].checksum(Backend::Sqlite)), (known() + 1, String::new())];
        assert!(check_applied(&newer, Backend::Sqlite).unwrap_err().to_string().contains("newer Passgate"));
        let gap = [(2, MIGRATIONS[1].checksum(Backend::Sqlite))];
        assert!(check_applied(&gap, Backend::Sqlite).unwrap_err().to_string().contains("skips migration 1"));
    }
}
