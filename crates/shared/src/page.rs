//! The list envelope every list endpoint returns.

use serde::{Deserialize, Serialize};

/// One page of a list: `{ "data": [...], "page": { "next": ..., "prev": ... } }`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page: PageInfo,
}

/// Opaque cursors for the neighbouring pages; `null` when there is nothing there (yet).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageInfo {
    pub next: Option<String>,
    pub prev: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, next: Option<String>, prev: Option<String>) -> Self {
        Self { data, page: PageInfo { next, prev } }
    }
}
