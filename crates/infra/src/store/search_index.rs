//! The search index's language, set at startup: `skein_language` follows `search.language`,
//! and when that changes every message's vector is rebuilt, in batches that a restart resumes
//! (`search_settings.reindex_after`). Writes meanwhile are indexed in the new language.

use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::RunQueryDsl;

use crate::store::{PgPool, SetupError, conn};

/// Messages whose vectors one reindexing statement rebuilds.
const REINDEX_BATCH: i64 = 2_000;

/// What the index does with the configured language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchIndex {
    /// Accents are folded (`unaccent` is installed); otherwise search is accent-sensitive.
    pub accent_folding: bool,
    /// Letters beyond ASCII fold case: the database's character type is not `C`/`POSIX`.
    pub unicode_case_folding: bool,
    /// Messages reindexed at this start (the language changed, or a reindex was cut short).
    pub reindexed: u64,
}

#[derive(diesel::QueryableByName)]
struct Settings {
    #[diesel(sql_type = Bool)]
    accent_folding: bool,
    #[diesel(sql_type = Bool)]
    unicode_case_folding: bool,
}

#[derive(diesel::QueryableByName)]
struct Batch {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    done: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    until: Option<uuid::Uuid>,
}

/// Points the index at `language` (a PostgreSQL text search configuration such as `english`,
/// `german` or `simple`) and finishes any reindexing it needs.
pub async fn prepare(pool: &PgPool, language: &str) -> Result<SearchIndex, SetupError> {
    let failed = |e: &dyn std::fmt::Display| SetupError::Start(format!("the search index: {e}"));
    let mut conn = conn(pool).await.map_err(|e| failed(&e))?;
    diesel::sql_query("SELECT skein_configure_search($1)")
        .bind::<Text, _>(language)
        .execute(&mut conn)
        .await
        .map_err(|e| failed(&e))?;
    let mut reindexed = 0u64;
    loop {
        // One batch and the position it reached, in one statement: a restart resumes after it.
        let batch: Batch = diesel::sql_query(
            "WITH batch AS (SELECT id FROM messages WHERE id > (SELECT reindex_after FROM search_settings) \
             ORDER BY id LIMIT $1), \
             done AS (UPDATE messages m SET search_vector = skein_message_vector(m.content, m.deleted_at, m.status) \
               FROM batch WHERE m.id = batch.id RETURNING m.id), \
             reached AS (SELECT count(*) AS n, (SELECT id FROM done ORDER BY id DESC LIMIT 1) AS last FROM done) \
             UPDATE search_settings SET reindex_after = CASE WHEN reached.n < $1 THEN NULL ELSE reached.last END \
             FROM reached RETURNING reached.n AS done, search_settings.reindex_after AS until",
        )
        .bind::<diesel::sql_types::BigInt, _>(REINDEX_BATCH)
        .get_result(&mut conn)
        .await
        .map_err(|e| failed(&e))?;
        reindexed += batch.done as u64;
        if batch.until.is_none() {
            break;
        }
        tracing::info!(reindexed, "search index: rebuilding for the new language");
    }
    let settings: Settings = diesel::sql_query(
        "SELECT accent_folding, (SELECT datctype NOT IN ('C', 'POSIX') FROM pg_database \
         WHERE datname = current_database()) AS unicode_case_folding FROM search_settings",
    )
    .get_result(&mut conn)
    .await
    .map_err(|e| failed(&e))?;
    Ok(SearchIndex {
        accent_folding: settings.accent_folding,
        unicode_case_folding: settings.unicode_case_folding,
        reindexed,
    })
}
