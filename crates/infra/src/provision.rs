//! Finding a PostgreSQL to use, or starting a private one, so that `skein serve` and the
//! tests run with no configuration. In order:
//! 1. the URL given (`DATABASE_URL` or the config file);
//! 2. a server on the default local socket or on 127.0.0.1:5432 (trust or peer auth);
//! 3. a private cluster under the data directory, from the PostgreSQL binaries installed on
//!    the machine; it is stopped when the [`Provisioned`] value is dropped.
//!
//! Embedding crates that download PostgreSQL at run time are deliberately not used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::process::Command;

use crate::store::{SetupError, redact};

const INSTALL_HINT: &str = "No PostgreSQL found: set DATABASE_URL, start a server on the default port, \
or install PostgreSQL so a private one can be started (Debian/Ubuntu: `apt-get install postgresql`; \
Fedora: `dnf install postgresql-server`; macOS: `brew install postgresql@15`).";

/// A database ready to use, and the private cluster serving it if we started one.
pub struct Provisioned {
    /// URL of the requested database.
    pub url: String,
    /// How it was found, for the start-up log.
    pub source: String,
    cluster: Option<PrivateCluster>,
}

impl Provisioned {
    /// Stops the private cluster, if one was started (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
    }
}

impl Drop for Provisioned {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds or starts PostgreSQL and makes sure `database` exists on it.
pub async fn provision(
    configured_url: Option<&str>,
    database: &str,
    data_dir: &Path,
) -> Result<Provisioned, SetupError> {
    if let Some(url) = configured_url.filter(|u| !u.is_empty()) {
        return Ok(Provisioned { url: url.to_owned(), source: format!("configured ({})", redact(url)), cluster: None });
    }
    for server in local_servers() {
        if let Ok(url) = ensure_database(&server, database).await {
            return Ok(Provisioned { url, source: format!("local server ({server})"), cluster: None });
        }
    }
    start_private_cluster(data_dir, database).await
}

/// Starts (initialising on first use) a private cluster under `data_dir` and creates
/// `database` in it. It listens only on a unix socket in its own directory.
pub async fn start_private_cluster(data_dir: &Path, database: &str) -> Result<Provisioned, SetupError> {
    let cluster = PrivateCluster::start(data_dir).await?;
    let server = cluster.server_url();
    let url = ensure_database(&server, database)
        .await
        .map_err(|e| SetupError::Provision(format!("private cluster started but unusable: {e}")))?;
    Ok(Provisioned { url, source: format!("private cluster in {}", cluster.dir.display()), cluster: Some(cluster) })
}

/// Base URLs (no database) of the usual local servers.
fn local_servers() -> Vec<String> {
    let os_user = std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned());
    let mut users = vec!["postgres".to_owned()];
    if os_user != "postgres" {
        users.push(os_user);
    }
    let mut servers = Vec::new();
    for user in &users {
        for socket_dir in ["/var/run/postgresql", "/tmp"] {
            if Path::new(socket_dir).join(".s.PGSQL.5432").exists() {
                servers.push(format!("postgres://{user}@{}", encode_host(socket_dir)));
            }
        }
        servers.push(format!("postgres://{user}@127.0.0.1:5432"));
    }
    servers
}

/// Connects to `server`, creates `database` if missing, and returns its URL.
async fn ensure_database(server: &str, database: &str) -> Result<String, String> {
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let maintenance_url = format!("{server}/postgres");
    let connect = AsyncPgConnection::establish(&maintenance_url);
    let mut conn = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(database)
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if !found.exists {
        let quoted = database.replace('"', "\"\"");
        let created = diesel::sql_query(format!("CREATE DATABASE \"{quoted}\"")).execute(&mut conn).await;
        // Another process may have created it in the meantime; that is fine.
        if let Err(e) = created
            && !e.to_string().contains("already exists")
        {
            return Err(e.to_string());
        }
    }
    Ok(format!("{server}/{database}"))
}

/// A PostgreSQL cluster of our own, listening only on a unix socket inside its directory.
struct PrivateCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// Set when we run as root: PostgreSQL refuses to, so it runs as this user.
    run_as: Option<String>,
    started_by_us: bool,
}

impl PrivateCluster {
    async fn start(data_dir: &Path) -> Result<Self, SetupError> {
        let bin = find_postgres_bin().ok_or_else(|| SetupError::Provision(INSTALL_HINT.to_owned()))?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| SetupError::Provision(format!("cannot create {}: {e}", data_dir.display())))?;
        let data_dir = data_dir.canonicalize().map_err(|e| SetupError::Provision(e.to_string()))?;
        let run_as = running_as_root().await.then(|| "postgres".to_owned());
        let dir = match &run_as {
            // The postgres user must reach the directory; under e.g. /root it cannot.
            Some(user) if !reachable_by(user, &data_dir).await => {
                let fallback = std::env::temp_dir().join(format!("skein-pg-{:016x}", path_hash(&data_dir)));
                tracing::warn!(wanted = %data_dir.display(), using = %fallback.display(), "data directory not reachable by the {user} user");
                std::fs::create_dir_all(&fallback).map_err(|e| SetupError::Provision(e.to_string()))?;
                fallback.join("postgres")
            }
            _ => data_dir.join("postgres"),
        };
        let mut cluster = Self { dir, bin, run_as, started_by_us: false };
        if !cluster.dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&cluster.dir).map_err(|e| SetupError::Provision(e.to_string()))?;
            cluster.chown().await?;
            let dir = cluster.dir.display().to_string();
            cluster.run("initdb", &["-D", &dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"]).await?;
        }
        let dir = cluster.dir.display().to_string();
        if cluster.run("pg_ctl", &["-D", &dir, "status"]).await.is_err() {
            let options = format!("-c listen_addresses='' -c unix_socket_directories='{dir}'");
            let log = format!("{dir}/server.log");
            cluster.run("pg_ctl", &["-D", &dir, "-o", &options, "-l", &log, "-w", "-t", "60", "start"]).await?;
            cluster.started_by_us = true;
        }
        Ok(cluster)
    }

    fn server_url(&self) -> String {
        format!("postgres://postgres@{}", encode_host(&self.dir.display().to_string()))
    }

    async fn chown(&self) -> Result<(), SetupError> {
        if let Some(user) = &self.run_as {
            let status = Command::new("chown")
                .args(["-R", user, &self.dir.display().to_string()])
                .status()
                .await
                .map_err(|e| SetupError::Provision(e.to_string()))?;
            if !status.success() {
                return Err(SetupError::Provision(format!("cannot hand {} to the {user} user", self.dir.display())));
            }
        }
        Ok(())
    }

    async fn run(&self, tool: &str, args: &[&str]) -> Result<(), SetupError> {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let output = command
            .args(args)
            .output()
            .await
            .map_err(|e| SetupError::Provision(format!("cannot run {}: {e}", program.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(SetupError::Provision(format!("{tool} failed: {}", String::from_utf8_lossy(&output.stderr).trim())))
        }
    }

    fn stop(self) {
        if !self.started_by_us {
            return;
        }
        let program = self.bin.join("pg_ctl");
        let dir = self.dir.display().to_string();
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => std::process::Command::new(&program),
        };
        // Best effort: the process is exiting either way.
        let _ = command.args(["-D", &dir, "-m", "fast", "-w", "stop"]).output();
    }
}

/// The directory holding `initdb` and `pg_ctl`: `PG_BIN`, `pg_config --bindir`, the Debian
/// layout (newest version), or the PATH.
fn find_postgres_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from).filter(|d| has_tools(d)) {
        return Some(dir);
    }
    let from_pg_config = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_tools(d)) {
        return Some(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_tools(d))
        .collect();
    debian.sort_by_key(|d| {
        d.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(dir) = debian.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_tools(d))
}

/// Whether `user` can enter `dir` (every parent must be traversable).
async fn reachable_by(user: &str, dir: &Path) -> bool {
    Command::new("runuser").args(["-u", user, "--", "test", "-x"]).arg(dir).status().await.is_ok_and(|s| s.success())
}

fn path_hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish()
}

/// Whether PostgreSQL's server binaries are installed (a private cluster can be started).
pub fn binaries_installed() -> bool {
    find_postgres_bin().is_some()
}

async fn running_as_root() -> bool {
    match Command::new("id").arg("-u").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim() == "0",
        Err(_) => false,
    }
}

/// A unix-socket directory as the host part of a URL.
fn encode_host(dir: &str) -> String {
    dir.replace('%', "%25").replace('/', "%2F").replace(' ', "%20")
}
