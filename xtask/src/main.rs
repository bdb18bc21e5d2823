//! Project chores: `cargo xtask <command>`.
//!
//! - `openapi [--check]`  write `openapi/openapi.json` from the code and `openapi/asyncapi.yaml`
//!   from it (or fail if either is stale)
//! - `test [ARGS…]`       run every test, provisioning PostgreSQL like the server does (and
//!   starting a NATS server when none listens on 127.0.0.1:4222)
//! - `deps`               prove `skein-shared` stays light (no actix, diesel or tokio)
//! - `modules`            prove `skein-infra`'s modules import in no circle and only down
//!   its floors (see `modules.rs`)
//! - `bench`              run the benchmarks against a release build
//! - `lint`               lint the committed OpenAPI and AsyncAPI documents with the pinned
//!   Redocly CLI and Spectral (installed from `openapi/package-lock.json` with `npm ci`); any
//!   error fails
//! - `clients [--check]`  regenerate the TypeScript client from the document (or fail if the
//!   committed one is stale), then type-check it (`tsc --strict`) and the quick starts, also
//!   against an openapi-typescript client generated from the same document
//! - `test-clients`       only the TypeScript client's suite against a live server (`test`
//!   without arguments runs it too, beside the Rust tests)

#![allow(clippy::print_stdout)]

mod asyncapi;
mod modules;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("openapi") => openapi(&root, args.iter().any(|a| a == "--check")),
        Some("test") => with_database(&root, "skein_test", |url| with_nats(&root, || test(&root, url, &args[1..]))),
        Some("bench") => with_database(&root, "skein_bench", |url| bench(&root, url, &args[1..])),
        Some("deps") => deps(&root),
        Some("modules") => modules::check(&root),
        Some("lint") => lint(&root),
        Some("clients") => clients(&root, args.iter().any(|a| a == "--check")),
        Some("test-clients") => with_database(&root, "skein_test", |url| {
            build_live_server(&root)?;
            client_suites(&root, url)
        }),
        _ => Err(
            "usage: cargo xtask <openapi [--check] | test [ARGS…] | test-clients | deps | modules | bench | lint | clients [--check]>"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root);
    command
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

/// Installs `dir`'s pinned npm packages (`npm ci`) unless `node_modules` already matches its
/// lock file.
fn npm_install(dir: &Path) -> Result<(), String> {
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(dir.join("package-lock.json")) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir))?;
    }
    Ok(())
}

fn npm(dir: &Path, script: &str) -> Command {
    let mut command = Command::new("npm");
    command.args(["run", "--silent", script]).current_dir(dir);
    command
}

/// The TypeScript client: generated from `openapi/openapi.json` by the pinned
/// @hey-api/openapi-ts (or compared with a fresh generation), then type-checked.
fn clients(root: &Path, check: bool) -> Result<(), String> {
    let dir = root.join("clients/typescript");
    npm_install(&dir)?;
    let committed = dir.join("src/generated");
    if check {
        let fresh = root.join("target/clients-check");
        let _ = std::fs::remove_dir_all(&fresh);
        run(Command::new(dir.join("node_modules/.bin/openapi-ts")).arg("--output").arg(&fresh).current_dir(&dir))?;
        let (old, new) = (read_tree(&committed)?, read_tree(&fresh)?);
        let stale: std::collections::BTreeSet<&String> =
            old.keys().chain(new.keys()).filter(|path| old.get(*path) != new.get(*path)).collect();
        if !stale.is_empty() {
            return Err(format!(
                "clients/typescript/src/generated is stale ({stale:?} differ): run `cargo xtask clients` and commit it"
            ));
        }
        println!("clients/typescript/src/generated is up to date");
    } else {
        run(&mut npm(&dir, "generate"))?;
    }
    run(&mut npm(&dir, "build"))?;
    run(&mut npm(&dir, "check"))
}

/// Every file under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>, String> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).map_err(|e| format!("{}: {e}", next.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
                files.insert(relative, std::fs::read(&path).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(files)
}

fn build_live_server(root: &Path) -> Result<(), String> {
    run(cargo(root).args(["build", "--quiet", "--package", "skein-tests", "--bin", "skein-live"]))
}

/// The suites in other languages against `skein-live` (the real server and the fake provider
/// on a schema of its own), side by side: the TypeScript client's, and the official `openai`
/// packages for Python and Node against the OpenAI-compatible endpoint. Each suite's output
/// is printed whole, so that it does not interleave with the others or the Rust tests.
fn client_suites(root: &Path, url: &str) -> Result<(), String> {
    use std::io::BufRead;
    let typescript = root.join("clients/typescript");
    let node = root.join("tests/openai/node");
    npm_install(&typescript)?;
    npm_install(&node)?;
    let python = python_env(root)?;
    let mut live = Command::new(root.join("target/debug/skein-live"))
        .env("DATABASE_URL", url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start skein-live: {e}"))?;
    let mut ready = String::new();
    if let Some(stdout) = live.stdout.take() {
        let _ = std::io::BufReader::new(stdout).read_line(&mut ready);
    }
    let started = serde_json::from_str::<serde_json::Value>(&ready).ok();
    let field = |name: &str| started.as_ref().and_then(|v| v[name].as_str().map(str::to_owned));
    let result = match (field("base_url"), field("llm_stats_url")) {
        (Some(base_url), Some(stats)) => {
            let mut pytest = Command::new(python);
            pytest.args(["-m", "unittest", "discover", "-v", "-s"]).arg(root.join("tests/openai/python"));
            let suites = [
                ("TypeScript client", npm(&typescript, "test")),
                ("openai (npm)", npm(&node, "test")),
                ("openai (Python)", pytest),
            ];
            let running: Vec<_> = suites
                .into_iter()
                .map(|(name, mut command)| {
                    command.env("SKEIN_URL", &base_url).env("SKEIN_LLM_STATS", &stats);
                    (name, std::thread::spawn(move || command.output()))
                })
                .collect();
            let mut failed = Vec::new();
            for (name, suite) in running {
                match suite.join() {
                    Ok(Ok(output)) => {
                        println!("== {name} suite\n{}", String::from_utf8_lossy(&output.stdout));
                        eprint!("{}", String::from_utf8_lossy(&output.stderr));
                        if !output.status.success() {
                            failed.push(name);
                        }
                    }
                    Ok(Err(e)) => {
                        eprintln!("{name}: cannot run: {e}");
                        failed.push(name);
                    }
                    Err(_) => failed.push(name),
                }
            }
            if failed.is_empty() { Ok(()) } else { Err(format!("failed: {}", failed.join(", "))) }
        }
        _ => Err(format!("skein-live did not start: {ready:?}")),
    };
    drop(live.stdin.take());
    let _ = live.wait();
    result
}

/// A virtual environment under `target/` with `tests/openai/python/requirements.txt`
/// installed (again only when that file changes); returns its Python.
fn python_env(root: &Path) -> Result<PathBuf, String> {
    let env = root.join("target/openai-python");
    let requirements = root.join("tests/openai/python/requirements.txt");
    let marker = env.join("installed-requirements.txt");
    let python = env.join("bin/python");
    let wanted = std::fs::read(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    if std::fs::read(&marker).ok().as_deref() != Some(wanted.as_slice()) || !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&env))?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    }
    Ok(python)
}

/// Both API documents through both pinned linters: Redocly's recommended rules and
/// Spectral's `spectral:oas` / `spectral:asyncapi`. Any error fails (Redocly lists its warnings too).
fn lint(root: &Path) -> Result<(), String> {
    let dir = root.join("openapi");
    npm_install(&dir)?;
    let documents = ["openapi.json", "asyncapi.yaml"];
    run(Command::new(dir.join("node_modules/.bin/redocly"))
        .args(["lint", "--config", "redocly.yaml"])
        .args(documents)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .current_dir(&dir))?;
    run(Command::new(dir.join("node_modules/.bin/spectral"))
        .args(["lint", "--ruleset", ".spectral.yaml", "--fail-severity", "error", "--display-only-failures"])
        .args(documents)
        .current_dir(&dir))
}

/// Generates the document with the server binary and writes or compares it.
fn openapi(root: &Path, check: bool) -> Result<(), String> {
    let output = cargo(root)
        .args(["run", "--quiet", "--package", "skein-server", "--bin", "skein", "--", "openapi"])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("`skein openapi` failed:\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    let generated = String::from_utf8_lossy(&output.stdout).into_owned();
    let openapi: serde_json::Value = serde_json::from_str(&generated).map_err(|e| e.to_string())?;
    let documents = [("openapi/openapi.json", generated), ("openapi/asyncapi.yaml", asyncapi::document(&openapi)?)];
    for (name, content) in documents {
        let path = root.join(name);
        if check {
            if std::fs::read_to_string(&path).unwrap_or_default() != content {
                return Err(format!("{name} is stale: run `cargo xtask openapi` and commit it"));
            }
            println!("{name} is up to date");
        } else {
            std::fs::write(&path, content).map_err(|e| e.to_string())?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Finds or starts PostgreSQL (as `skein serve` does), runs `f` with the URL, then stops any
/// private cluster it started.
fn with_database(root: &Path, name: &str, f: impl FnOnce(&str) -> Result<(), String>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let configured = std::env::var("DATABASE_URL").ok();
    let data_dir = root.join("target/skein-pg");
    let mut database = runtime
        .block_on(skein_infra::provision::provision(configured.as_deref(), name, &data_dir))
        .map_err(|e| e.to_string())?;
    println!("PostgreSQL: {}", database.source);
    let result = f(&database.url);
    database.shutdown();
    result
}

/// The NATS fan-out tests need a NATS server at 127.0.0.1:4222: use the one running, or
/// start `nats-server` (Debian's package) for the duration of `f`.
fn with_nats(root: &Path, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    const ADDR: &str = "127.0.0.1:4222";
    let listening = || std::net::TcpStream::connect(ADDR).is_ok();
    if listening() {
        return f();
    }
    let binary = ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or("no NATS server on 127.0.0.1:4222 and no nats-server binary (apt-get install nats-server)")?;
    let store = root.join("target/skein-nats");
    let mut child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", "4222", "-js", "-sd"])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let started = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        listening()
    });
    println!("NATS: started {binary} for the tests");
    let result = if started { f() } else { Err("nats-server did not start listening".to_owned()) };
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn test(root: &Path, url: &str, extra: &[String]) -> Result<(), String> {
    // Without filters, the suites in other languages run beside the Rust tests.
    let others = match extra.is_empty() {
        true => {
            build_live_server(root)?;
            let (root, url) = (root.to_path_buf(), url.to_owned());
            Some(std::thread::spawn(move || client_suites(&root, &url)))
        }
        false => None,
    };
    let nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut command = cargo(root);
    if nextest {
        command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        command.args(["test", "--workspace", "--no-fail-fast"]);
    }
    let rust = run(command.args(extra).env("DATABASE_URL", url));
    let others = others.map_or(Ok(()), |suites| suites.join().unwrap_or_else(|_| Err("suites panicked".into())));
    rust?;
    others?;
    if extra.is_empty() {
        // The crate docs' examples (nextest does not run doctests).
        run(cargo(root).args(["test", "--doc", "--package", "skein-shared", "--package", "skein-client"]))?;
    }
    Ok(())
}

fn bench(root: &Path, url: &str, extra: &[String]) -> Result<(), String> {
    // The realtime part runs the server binary as a process of its own.
    run(cargo(root).args(["build", "--release", "--package", "skein-server", "--bin", "skein"]))?;
    let binary = root.join("target/release/skein");
    run(cargo(root)
        .env("BENCH_SERVER_BINARY", binary)
        .args(["run", "--release", "--package", "skein-tests", "--bin", "skein-bench", "--"])
        .args(extra)
        .env("DATABASE_URL", url))
}

/// `skein-shared` without default features must not depend on actix, diesel or tokio.
fn deps(root: &Path) -> Result<(), String> {
    let output = cargo(root)
        .args(["tree", "--package", "skein-shared", "--no-default-features", "--edges", "normal", "--prefix", "none"])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let heavy: Vec<&str> =
        tree.lines().filter(|line| ["actix", "diesel", "tokio"].iter().any(|h| line.starts_with(h))).collect();
    if heavy.is_empty() {
        println!("skein-shared is light: {} crates, none of actix, diesel or tokio", tree.lines().count());
        Ok(())
    } else {
        Err(format!("skein-shared pulls in heavy dependencies: {heavy:?}"))
    }
}
