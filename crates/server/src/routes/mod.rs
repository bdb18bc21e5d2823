//! HTTP handlers, one file per area. Handlers only extract, call a service and shape the
//! response; rules live in `skein-domain`.

pub mod admin;
pub mod answers;
pub mod api_keys;
pub mod assistants;
pub mod auth;
pub mod conversations;
pub mod health;
pub mod limits;
pub mod messages;
pub mod openai;
pub mod presence;
pub mod read_state;
pub mod search;
pub mod streams;
pub mod threads;
pub mod workspaces;
mod ws_frames;

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use skein_domain::entities::Created;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every `/api` handler (collected into the OpenAPI document as well).
pub fn configure(cfg: &mut ServiceConfig) {
    auth::configure(cfg);
    workspaces::configure(cfg);
    api_keys::configure(cfg);
    assistants::configure(cfg);
    read_state::configure(cfg);
    conversations::configure(cfg);
    threads::configure(cfg);
    messages::configure(cfg);
    answers::configure(cfg);
    streams::configure(cfg);
    presence::configure(cfg);
    search::configure(cfg);
    limits::configure(cfg);
    admin::configure(cfg);
}

/// `?cursor=&limit=` of ordinary lists.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `page.next` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default and maximum in the configuration).
    pub limit: Option<u32>,
}

/// The items of a comma-separated query value (`tags=a,b`), trimmed, blanks dropped.
pub fn comma_list(raw: Option<&str>) -> Vec<&str> {
    raw.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty()).collect()
}

/// 201 for something new, 200 when an earlier identical request already made it.
pub fn created<T: Serialize>(result: Created<T>) -> HttpResponse {
    match result {
        Created::New(v) => HttpResponse::Created().json(v),
        Created::Existing(v) => HttpResponse::Ok().json(v),
    }
}
