//! A typed async client for Skein's HTTP API, on the wire types of [`skein_shared`].
//!
//! ```no_run
//! use skein_client::Client;
//! use skein_shared::auth::RegisterRequest;
//!
//! # async fn run() -> Result<(), skein_client::Error> {
//! let anonymous = Client::new("http://127.0.0.1:8080");
//! let registration = RegisterRequest { email: "ann@example.com".into(), password: "correct horse battery".into(), display_name: "Ann".into() };
//! let auth = anonymous.register(&registration).await?;
//! let client = anonymous.with_token(auth.token);
//! let mut events = client.events(None).await?;
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.body.kind());
//! }
//! # Ok(()) }
//! ```
//!
//! Every endpoint is reachable: the common ones have typed methods, the rest go through
//! [`Client::get`], [`Client::post`], [`Client::patch`], [`Client::put`] and
//! [`Client::delete`] with `skein_shared` request and response types. Problem responses
//! become [`Error::Api`] carrying the server's [`Problem`] (switch on `problem.code`).
//! Event streams ([`Client::events`], [`Client::answer_stream`]) reconnect by themselves
//! and resume after the last event they delivered (`Last-Event-ID`): no gap, no duplicate.

mod endpoints;
mod events;
mod sse;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skein_shared::Problem;

pub use events::EventStream;
pub use sse::{SseFrame, SseParser};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a problem (RFC 9457); `problem.code` is stable.
    #[error("{status} {code}: {title}", code = problem.code.as_str(), title = problem.title)]
    Api { status: u16, problem: Box<Problem> },
    /// The request could not be sent, or the response not read.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The response was not what the API promises.
    #[error("unexpected {status} response: {reason}")]
    Unexpected { status: u16, reason: String },
}

impl Error {
    /// The problem's stable code, when the server sent one.
    pub fn code(&self) -> Option<skein_shared::ErrorCode> {
        match self {
            Self::Api { problem, .. } => Some(problem.code),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A handle on one Skein server, optionally signed in. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`), not signed in.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// As [`Client::new`], on a `reqwest::Client` configured by the caller (proxies, TLS,
    /// timeouts; keep total timeouts off for event streams).
    pub fn with_http(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        let base = base_url.into().trim_end_matches('/').to_owned();
        Self { http, base, token: None }
    }

    /// This client, sending `Authorization: Bearer <token>` (a session token).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self { token: Some(token.into()), ..self.clone() }
    }

    /// The token this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path` (e.g. `/api/workspaces`), decoding the JSON response.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    /// `GET path?query`, the query serialised from `query` (absent `Option`s are left out).
    pub async fn get_with<Q: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, query: &Q) -> Result<T> {
        self.json(self.request(Method::GET, path).query(query)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.request(Method::PATCH, path).json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path`, for endpoints that answer 204 No Content.
    pub async fn delete(&self, path: &str) -> Result<()> {
        checked(self.request(Method::DELETE, path).send().await?).await.map(drop)
    }

    /// A request to `path` with this client's token; for what the typed methods do not cover.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = checked(request.send().await?).await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected { status, reason: e.to_string() })
    }
}

/// The response if it is a success, else its problem as [`Error::Api`].
async fn checked(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() || status.is_informational() {
        return Ok(response);
    }
    let status = status.as_u16();
    let bytes = response.bytes().await?;
    match serde_json::from_slice::<Problem>(&bytes) {
        Ok(problem) => Err(Error::Api { status, problem: Box::new(problem) }),
        Err(_) => {
            Err(Error::Unexpected { status, reason: String::from_utf8_lossy(&bytes).chars().take(200).collect() })
        }
    }
}
