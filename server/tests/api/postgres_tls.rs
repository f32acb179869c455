//! TLS to PostgreSQL (issue 25): a throwaway cluster that accepts TLS
//! connections only (`hostssl`), with a CA and a server certificate made
//! here; `sslmode=require` and `verify-full` reach it, a wrong CA, a
//! wrong host name or a cleartext connection do not.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use passgate::store::{Store, StoreOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A running cluster; stopped (and its directory removed) when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", &data.display().to_string(), "-m", "immediate", "stop"]);
    }
}

/// PostgreSQL's binaries, the newest installed; `None` (the test skipped)
/// without them, unless `PASSGATE_TEST_REQUIRE_POSTGRES` is set.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| bin.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    if found.is_empty() {
        assert!(
            std::env::var_os("PASSGATE_TEST_REQUIRE_POSTGRES").is_none(),
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin): `make tools-postgres`"
        );
        eprintln!("skipped: PostgreSQL is not installed (/usr/lib/postgresql/*/bin)");
    }
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// Runs `program` (as `postgres` when root: initdb and the server refuse root).
fn as_postgres(program: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    if is_root() {
        let mut line = format!("'{}'", program.display());
        for arg in args {
            line.push_str(&format!(" '{arg}'"));
        }
        Command::new("su").args(["postgres", "-s", "/bin/bash", "-c", &line]).output()
    } else {
        Command::new(program).args(args).output()
    }
}

fn run_as_postgres(program: &Path, args: &[&str], log: &Path) {
    let out = as_postgres(program, args).unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}{}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A CA and its key.
fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (params.self_signed(&key).unwrap(), key)
}

/// Starts a cluster that serves TLS with a certificate by `ca` for
/// `db.passgate.test` and 127.0.0.1 (not `localhost`), and refuses
/// cleartext TCP connections.
fn start(bin: PathBuf, ca: &(rcgen::Certificate, KeyPair)) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["db.passgate.test".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "db.passgate.test");
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    std::fs::write(path.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(path.join("server.key"), key.serialize_pem()).unwrap();
    let chmod = Command::new("chmod").args(["600", &path.join("server.key").display().to_string()]).status().unwrap();
    assert!(chmod.success());
    let cluster = Cluster { bin: bin.clone(), dir, port };
    if is_root() {
        let chown = Command::new("chown").args(["-R", "postgres", &path.display().to_string()]).status().unwrap();
        assert!(chown.success());
    }
    let data = path.join("data").display().to_string();
    let log = path.join("log");
    run_as_postgres(&bin.join("initdb"), &["-D", &data, "-A", "trust", "-U", "passgate", "--no-sync"], &log);
    // TLS only over TCP: no `host` line, so a cleartext connection is refused.
    std::fs::write(path.join("data/pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n").unwrap();
    let options = format!(
        "-k {dir} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
        dir = path.display()
    );
    run_as_postgres(&bin.join("pg_ctl"), &["-D", &data, "-w", "-l", &log.display().to_string(), "-o", &options, "start"], &log);
    cluster
}

async fn open(url: &str) -> anyhow::Result<Store> {
    Store::open(url, &StoreOptions::new(&passgate::sealed::SecretsKey::sandbox())).await
}

#[tokio::test]
async fn postgres_tls_require_and_verify_full_connect_cleartext_does_not() {
    let Some(bin) = postgres_bin() else { return };
    let right = ca("Passgate test CA");
    let wrong = ca("Some other CA");
    let cluster = start(bin, &right);
    let dir = cluster.dir.path();
    std::fs::write(dir.join("ca.pem"), right.0.pem()).unwrap();
    std::fs::write(dir.join("wrong-ca.pem"), wrong.0.pem()).unwrap();
    let (ca_pem, wrong_pem) = (dir.join("ca.pem").display().to_string(), dir.join("wrong-ca.pem").display().to_string());
    let url = |host: &str, query: &str| format!("postgres://passgate@{host}:{}/postgres?{query}", cluster.port);

    // Encrypted, unverified: opens (and migrates) the store.
    let store = open(&url("127.0.0.1", "sslmode=require")).await.unwrap();
    store.link_chains().await.unwrap();
    drop(store);
    // Verified against the right CA and the host name.
    open(&url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca_pem}"))).await.unwrap();
    // `require` with a CA checks the chain (as libpq).
    open(&url("127.0.0.1", &format!("sslmode=require&sslrootcert={ca_pem}"))).await.unwrap();

    let err = open(&url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={wrong_pem}"))).await.err().unwrap();
    assert!(format!("{err:#}").contains("certificate"), "a wrong CA: {err:#}");
    let err = open(&url("127.0.0.1", &format!("sslmode=require&sslrootcert={wrong_pem}"))).await.err().unwrap();
    assert!(format!("{err:#}").contains("certificate"), "require with a wrong CA: {err:#}");
    // The certificate is not for `localhost`: verify-full refuses it,
    // verify-ca (the chain only) accepts it.
    let err = open(&url("localhost", &format!("sslmode=verify-full&sslrootcert={ca_pem}"))).await.err().unwrap();
    assert!(format!("{err:#}").contains("certificate"), "a wrong name: {err:#}");
    open(&url("localhost", &format!("sslmode=verify-ca&sslrootcert={ca_pem}"))).await.unwrap();

    // In clear: the server refuses it.
    let err = open(&url("127.0.0.1", "sslmode=disable")).await.err().unwrap();
    assert!(format!("{err:#}").contains("no pg_hba.conf entry"), "cleartext: {err:#}");
    // No sslmode: libpq's `prefer`, TLS since the server offers it.
    open(&format!("postgres://passgate@127.0.0.1:{}/postgres", cluster.port)).await.unwrap();
}
