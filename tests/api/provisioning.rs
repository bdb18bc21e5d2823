//! The zero-configuration path: a private PostgreSQL cluster started from the installed
//! binaries, usable by the server, and stopped on shutdown.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

#[tokio::test(flavor = "multi_thread")]
async fn a_private_cluster_starts_serves_and_stops() {
    if !skein_infra::provision::binaries_installed() {
        eprintln!("SKIPPED: no PostgreSQL server binaries on this machine (.ci/run installs them)");
        return;
    }
    // Under target/ so that, when running as root, the postgres user can reach it.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../target/pg-provision-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut db =
        skein_infra::provision::start_private_cluster(&dir, "skein_provisioned").await.expect("private cluster");
    assert!(db.url.ends_with("/skein_provisioned"), "{}", db.url);
    let applied = skein_infra::store::migrate(&db.url).await.expect("migrations run on it");
    assert!(applied >= 1);
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect over its socket");
    diesel::sql_query("SELECT 1 FROM users").execute(&mut conn).await.expect("schema is there");
    drop(conn);
    let pid_file = dir.join("postgres/postmaster.pid");
    assert!(pid_file.exists());
    db.shutdown();
    assert!(!pid_file.exists(), "the cluster stops with its owner");
    // Starting again reuses the initialised cluster.
    let mut again = skein_infra::provision::start_private_cluster(&dir, "skein_provisioned").await.expect("restart");
    again.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
