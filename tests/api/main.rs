//! Black-box API tests: the real server over HTTP against real PostgreSQL.
//! One test binary with modules keeps link time down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod answers;
mod api_keys;
mod assistants;
mod authz;
mod contract;
mod conversations;
mod health;
mod history;
mod input;
mod limits;
mod messaging;
mod messaging_props;
mod openai;
mod preferences;
mod providers;
mod provisioning;
mod realtime;
mod rust_client;
mod search;
mod threads;
mod tree_props;
mod workspaces;
