//! The two backends' schemas, migrated to the same version, compared: the
//! same tables, columns (types mapped by [`kind`]), NOT NULL, primary
//! keys, unique constraints and indexes (by their columns), other indexes
//! (by name and columns), foreign keys and append-only triggers, but for
//! the differences [`DELIBERATE`] lists with their reasons.
//!
//! Not compared: CHECK constraints and defaults (SQLite keeps them only in
//! each table's CREATE text), index predicates (only whether an index is
//! partial), and each backend's own bookkeeping (`sqlite_sequence`).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

use super::StoreOptions;

/// A table as both backends can describe it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// Column → (type kind, NOT NULL).
    columns: BTreeMap<String, (&'static str, bool)>,
    primary_key: Vec<String>,
    /// The columns of each unique constraint or unique index.
    unique: BTreeSet<Vec<String>>,
    /// Other indexes: (name, columns, partial).
    indexes: BTreeSet<(String, Vec<String>, bool)>,
    /// (columns, referenced table, referenced columns, ON DELETE).
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>, String)>,
    /// The statements a trigger refuses: UPDATE, DELETE.
    refused: BTreeSet<String>,
}

type Schema = BTreeMap<String, Table>;

/// The one mapping of column types: SQLite's declared type or
/// PostgreSQL's `data_type` → what both call it. Integers are one kind:
/// SQLite's INTEGER is 64 bits, PostgreSQL's columns are `BIGINT` where a
/// value may pass 2³¹ (times, ids) and `INTEGER` for counters.
fn kind(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        "boolean" => "boolean",
        other => panic!("no mapping for the column type {other:?}: add it to `kind`"),
    }
}

/// Where the schemas differ on purpose: (table, column, SQLite's kind,
/// PostgreSQL's kind, why).
const DELIBERATE: &[(&str, &str, &str, &str, &str)] = &[(
    "partners",
    "embed",
    "integer",
    "boolean",
    "SQLite has no boolean type: INTEGER with CHECK (embed IN (0, 1)); each backend's driver reads it as a bool",
)];

fn sqlite_schema(conn: &Connection) -> Schema {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut schema = Schema::new();
    for name in names {
        let mut table = Table::default();
        let mut key: Vec<(i64, String)> = Vec::new();
        let mut statement = conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)").unwrap();
        let mut rows = statement.query([&name]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let (column, declared, not_null, pk): (String, String, bool, i64) =
                (row.get(0).unwrap(), row.get(1).unwrap(), row.get(2).unwrap(), row.get(3).unwrap());
            // A primary key column counts as NOT NULL: an INTEGER PRIMARY
            // KEY is the rowid and a WITHOUT ROWID table's key is NOT NULL,
            // but a rowid table's TEXT or BLOB key admits NULL in SQLite
            // (its documented quirk, kept for compatibility). Passgate
            // never writes one; adding NOT NULL would rebuild ten tables
            // that others reference.
            table.columns.insert(column.clone(), (kind(&declared), not_null || pk > 0));
            if pk > 0 {
                key.push((pk, column));
            }
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();

        let indexes: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)")
            .unwrap()
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, origin, partial) in indexes {
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .unwrap()
                .query_map([&index], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            match (origin.as_str(), unique) {
                ("pk", _) => {}
                (_, true) => assert!(table.unique.insert(columns), "{name}: two unique indexes on the same columns"),
                (_, false) => drop(table.indexes.insert((index, columns, partial))),
            }
        }

        let mut keys: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
        let mut statement =
            conn.prepare("SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq").unwrap();
        let mut rows = statement.query([&name]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let id: i64 = row.get(0).unwrap();
            let to: Option<String> = row.get(3).unwrap();
            let entry = keys.entry(id).or_insert_with(|| (Vec::new(), row.get(1).unwrap(), Vec::new(), row.get(4).unwrap()));
            entry.0.push(row.get(2).unwrap());
            entry.2.push(to.expect("foreign keys name the referenced columns"));
        }
        table.foreign_keys = keys.into_values().collect();
        schema.insert(name, table);
    }

    let triggers: Vec<(String, String)> = conn
        .prepare("SELECT tbl_name, upper(sql) FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (table, sql) in triggers {
        assert!(sql.contains("RAISE(ABORT"), "{table}: a trigger that does not refuse: {sql}");
        for event in ["UPDATE", "DELETE"] {
            if sql.contains(&format!("BEFORE {event} ON")) {
                schema.get_mut(&table).unwrap().refused.insert(event.to_owned());
            }
        }
    }
    schema
}

async fn postgres_schema(client: &tokio_postgres::Client) -> Schema {
    let mut schema = Schema::new();
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap();
    for row in tables {
        schema.insert(row.get(0), Table::default());
    }
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
             FROM information_schema.columns WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap();
    for row in columns {
        let table = schema.get_mut(row.get::<_, &str>(0)).unwrap();
        table.columns.insert(row.get(1), (kind(row.get(2)), row.get(3)));
    }
    // Every index, the ones behind PRIMARY KEY and UNIQUE constraints too.
    let indexes = client
        .query(
            "SELECT t.relname::text, i.relname::text, x.indisprimary, x.indisunique, x.indpred IS NOT NULL,
                    array(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)
             FROM pg_index x
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema()",
            &[],
        )
        .await
        .unwrap();
    for row in indexes {
        let table = schema.get_mut(row.get::<_, &str>(0)).unwrap();
        let columns: Vec<String> = row.get(5);
        match (row.get::<_, bool>(2), row.get::<_, bool>(3)) {
            (true, _) => table.primary_key = columns,
            (false, true) => assert!(table.unique.insert(columns), "two unique indexes on the same columns"),
            (false, false) => drop(table.indexes.insert((row.get(1), columns, row.get(4)))),
        }
    }
    let keys = client
        .query(
            "SELECT t.relname::text, r.relname::text, c.confdeltype::text,
                    array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
                    array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
             FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid
             JOIN pg_class r ON r.oid = c.confrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE c.contype = 'f' AND n.nspname = current_schema()",
            &[],
        )
        .await
        .unwrap();
    for row in keys {
        let on_delete = match row.get::<_, &str>(2) {
            "a" => "NO ACTION",
            "c" => "CASCADE",
            "r" => "RESTRICT",
            "n" => "SET NULL",
            "d" => "SET DEFAULT",
            other => panic!("ON DELETE {other:?}"),
        };
        let table = schema.get_mut(row.get::<_, &str>(0)).unwrap();
        table.foreign_keys.insert((row.get(3), row.get(1), row.get(4), on_delete.to_owned()));
    }
    // (information_schema lists no TRUNCATE trigger: SQLite has no
    // TRUNCATE, PostgreSQL's append-only tables refuse it besides.)
    let triggers = client
        .query(
            "SELECT event_object_table::text, event_manipulation::text, action_statement::text
             FROM information_schema.triggers WHERE trigger_schema = current_schema()",
            &[],
        )
        .await
        .unwrap();
    for row in triggers {
        let statement: &str = row.get(2);
        // `passgate_link_only` refuses every change but the one link of a
        // waiting row (`store/audit.rs`), which only PostgreSQL makes.
        let refuses = ["passgate_append_only", "passgate_link_only"].iter().any(|f| statement.contains(f));
        assert!(refuses, "a trigger that does not refuse: {statement}");
        schema.get_mut(row.get::<_, &str>(0)).unwrap().refused.insert(row.get(1));
    }
    schema
}

/// What differs between the two, one line each.
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut found = Vec::new();
    for name in sqlite.keys().chain(postgres.keys()).collect::<BTreeSet<_>>() {
        let (Some(s), Some(p)) = (sqlite.get(name), postgres.get(name)) else {
            found.push(format!("{name}: only on {}", if sqlite.contains_key(name) { "SQLite" } else { "PostgreSQL" }));
            continue;
        };
        for column in s.columns.keys().chain(p.columns.keys()).collect::<BTreeSet<_>>() {
            let (sc, pc) = (s.columns.get(column), p.columns.get(column));
            if sc != pc {
                found.push(format!("{name}.{column}: SQLite {sc:?}, PostgreSQL {pc:?} (kind, NOT NULL)"));
            }
        }
        let mut aspect = |what: &str, a: String, b: String| {
            if a != b {
                found.push(format!("{name} {what}: SQLite {a}, PostgreSQL {b}"));
            }
        };
        aspect("primary key", format!("{:?}", s.primary_key), format!("{:?}", p.primary_key));
        aspect("unique", format!("{:?}", s.unique), format!("{:?}", p.unique));
        aspect("indexes", format!("{:?}", s.indexes), format!("{:?}", p.indexes));
        aspect("foreign keys", format!("{:?}", s.foreign_keys), format!("{:?}", p.foreign_keys));
        aspect("refused by triggers", format!("{:?}", s.refused), format!("{:?}", p.refused));
    }
    found
}

#[tokio::test]
async fn the_two_migrated_schemas_are_equivalent() {
    let Some(url) = super::suite::postgres_url().await else { return };
    let options = StoreOptions::new(&crate::sealed::SecretsKey::sandbox());
    drop(super::postgres::PgStore::open(&url, &options).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let mut postgres = postgres_schema(&client).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    drop(super::sqlite::SqliteStore::open(&format!("sqlite://{}", path.display()), &options).await.unwrap());
    let sqlite = sqlite_schema(&Connection::open(&path).unwrap());

    for (table, column, on_sqlite, on_postgres, why) in DELIBERATE {
        let sqlite_kind = sqlite[*table].columns[*column].0;
        let kept = &mut postgres.get_mut(*table).unwrap().columns.get_mut(*column).unwrap().0;
        assert_eq!((sqlite_kind, *kept), (*on_sqlite, *on_postgres), "{table}.{column} no longer differs as listed ({why})");
        *kept = sqlite_kind;
    }
    // The readers see what there is to compare.
    assert!(sqlite.len() > 20, "{:?}", sqlite.keys());
    assert_eq!(sqlite["webauthn_ceremonies"].primary_key, ["sca_session_id", "kind"]);
    assert_eq!(sqlite["users"].unique.len(), 3, "phone, webauthn_handle, email");
    assert_eq!(sqlite["transfers"].foreign_keys.len(), 4);
    assert_eq!(sqlite["credential_registry"].refused, BTreeSet::from(["UPDATE".to_owned(), "DELETE".to_owned()]));
    let found = differences(&sqlite, &postgres);
    assert!(found.is_empty(), "the schemas differ:\n{}", found.join("\n"));
}

#[test]
fn differences_are_named() {
    let mut a = Schema::new();
    a.insert("t".into(), Table::default());
    a.get_mut("t").unwrap().columns.insert("c".into(), ("integer", true));
    let mut b = Schema::new();
    b.insert("t".into(), Table::default());
    b.get_mut("t").unwrap().columns.insert("c".into(), ("integer", false));
    b.insert("u".into(), Table::default());
    assert_eq!(
        differences(&a, &b),
        ["t.c: SQLite Some((\"integer\", true)), PostgreSQL Some((\"integer\", false)) (kind, NOT NULL)", "u: only on PostgreSQL"]
    );
}
