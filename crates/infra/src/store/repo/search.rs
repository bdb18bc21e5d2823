//! Full-text search (`SearchRepo`). PostgreSQL parses the query through `skein_language`
//! (`websearch_to_tsquery`), finds hits through the GIN index on `messages.search_vector`
//! (kept by a trigger in the statement of every write, see the search migration) and marks
//! the matched words (`ts_headline`). The query is built per search with only the filters asked
//! for, every value bound, so the planner picks per query between the GIN index (rare words)
//! and walking messages newest first (common words sorted by newest).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, Float4, HasSqlType, Int8, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use skein_domain::DomainResult;
use skein_domain::entities::{ConversationAccess, FoundMessage, MessageSearch};
use skein_domain::ports::SearchRepo;
use skein_domain::search::{HIGHLIGHT_END, HIGHLIGHT_START};
use skein_shared::search::{SearchHas, SearchSort};
use skein_shared::{UserId, WorkspaceId};
use uuid::Uuid;

use super::standing::{departed_from, in_conversation, in_workspace, may_see, may_see_after_rejoining, standing};
use crate::store::codec::{enum_to_db, uuid};
use crate::store::rows::{AccessRow, ConversationRow, MessageRow, access, message_columns};
use crate::store::schema::{conversation_members, conversations, departure_spans, workspace_members};
use crate::store::{Store, db_error};

/// `ts_headline` options: mark every matched word and change nothing else (with
/// `HighlightAll` it keeps the text whole, tags included), so a marked text is the content
/// plus markers; the domain cuts the snippet from it.
fn headline_options() -> String {
    format!("HighlightAll=true, StartSel={HIGHLIGHT_START}, StopSel={HIGHLIGHT_END}")
}

#[derive(QueryableByName)]
struct HitRow {
    #[diesel(embed)]
    message: MessageRow,
    #[diesel(sql_type = Float4)]
    rank: f32,
    #[diesel(sql_type = Text)]
    marked_content: String,
}

#[derive(QueryableByName)]
struct Terms {
    #[diesel(sql_type = Text)]
    terms: String,
}

/// Raw SQL with its binds numbered as they are appended.
struct Statement<'a> {
    query: BoxedSqlQuery<'a, Pg, SqlQuery>,
    binds: usize,
}

impl<'a> Statement<'a> {
    /// A statement whose `$1` is `terms`, the search's `tsquery`, which the text may use
    /// anywhere.
    fn with_terms(terms: String) -> Self {
        Self { query: diesel::sql_query(String::new()).into_boxed().bind::<Text, _>(terms), binds: 1 }
    }

    fn sql(mut self, text: &str) -> Self {
        self.query = self.query.sql(text);
        self
    }

    /// Appends `$n` for the value and binds it.
    fn bind<ST, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + Send + 'a,
        ST: Send + 'a,
    {
        self.binds += 1;
        self.query = self.query.sql(format!("${}", self.binds)).bind::<ST, V>(value);
        self
    }
}

impl SearchRepo for Store {
    async fn search_terms(&self, query: &str) -> DomainResult<String> {
        let mut conn = self.conn().await?;
        let row: Terms =
            diesel::sql_query("SELECT websearch_to_tsquery('skein_language', skein_search_text($1))::text AS terms")
                .bind::<Text, _>(query)
                .get_result(&mut conn)
                .await
                .map_err(db_error)?;
        Ok(row.terms)
    }

    async fn searchable_conversations(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        include_departed: bool,
    ) -> DomainResult<Vec<ConversationAccess>> {
        let user = uuid(user);
        let mut query = conversations::table
            .inner_join(workspace_members::table.on(in_workspace(user)))
            .left_join(conversation_members::table.on(in_conversation(user)))
            .left_join(departure_spans::table.on(departed_from(user)))
            .select((ConversationRow::as_select(), standing()))
            .into_boxed();
        query = match include_departed {
            true => query.filter(may_see_after_rejoining()),
            false => query.filter(may_see()),
        };
        if let Some(workspace) = workspace {
            query = query.filter(conversations::workspace_id.eq(uuid(workspace)));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<AccessRow> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(access).collect()
    }

    async fn search_messages(&self, search: MessageSearch) -> DomainResult<Vec<FoundMessage>> {
        if search.scope.is_empty() {
            return Ok(Vec::new());
        }
        // Most conversations show their whole history; the others only what follows a floor.
        let (whole, floored): (Vec<_>, Vec<_>) = search.scope.iter().partition(|(_, floor)| *floor == 0);
        let whole: Vec<Uuid> = whole.iter().map(|(id, _)| uuid(*id)).collect();
        let (floored, floors): (Vec<Uuid>, Vec<i64>) = floored.iter().map(|(id, floor)| (uuid(*id), *floor)).unzip();
        let sort = search.filters.sort;
        // Relevance ranks the newest `ranked` matches under the first page's ceiling (so the
        // work per page is bounded and every page ranks the same messages); newest walks ids.
        let mut hits = Statement::with_terms(search.terms).sql(match sort {
            SearchSort::Relevance => "WITH candidates AS (SELECT m.id, m.search_vector",
            SearchSort::Newest => "WITH hits AS (SELECT m.id, 0::real AS rank",
        });
        hits = hits.sql(" FROM messages m WHERE m.search_vector @@ $1::tsquery AND m.deleted_at IS NULL AND (");
        // Only the parts the scope has: the planner then sees one plain `= ANY` in the usual case.
        let both = !whole.is_empty() && !floored.is_empty();
        if !whole.is_empty() {
            hits = hits.sql("m.conversation_id = ANY(").bind::<Array<SqlUuid>, _>(whole).sql(")");
        }
        if both {
            hits = hits.sql(" OR ");
        }
        if !floored.is_empty() {
            hits = hits
                .sql("(m.conversation_id = ANY(")
                .bind::<Array<SqlUuid>, _>(floored.clone())
                .sql(") AND m.seq > (")
                .bind::<Array<Int8>, _>(floors)
                .sql(")[array_position(")
                .bind::<Array<SqlUuid>, _>(floored)
                .sql(", m.conversation_id)])");
        }
        hits = hits.sql(")");
        if let Some(root) = search.filters.root {
            hits = hits.sql(" AND m.root_id = ").bind::<SqlUuid, _>(uuid(root));
        }
        if let Some(author) = search.filters.author {
            hits = hits.sql(" AND m.author_id = ").bind::<SqlUuid, _>(uuid(author));
        }
        if let Some(role) = search.filters.role {
            hits = hits.sql(" AND m.role = ").bind::<Text, _>(enum_to_db(role));
        }
        if let Some(from) = search.filters.from {
            hits = hits.sql(" AND m.created_at >= ").bind::<Timestamptz, _>(from);
        }
        if let Some(to) = search.filters.to {
            hits = hits.sql(" AND m.created_at < ").bind::<Timestamptz, _>(to);
        }
        if !search.filters.tags.is_empty() {
            hits = hits
                .sql(" AND EXISTS (SELECT 1 FROM threads t WHERE t.root_id = m.root_id AND t.tags @> ")
                .bind::<Array<Text>, _>(search.filters.tags)
                .sql(")");
        }
        for has in search.filters.has {
            hits = hits.sql(match has {
                SearchHas::Reactions => " AND EXISTS (SELECT 1 FROM reactions x WHERE x.message_id = m.id)",
                SearchHas::Pins => " AND m.pinned_at IS NOT NULL",
                // Messages carry no attachments yet: none has one.
                SearchHas::Attachments => " AND false",
            });
        }
        hits = match sort {
            SearchSort::Relevance => {
                hits = hits
                    .sql(" AND m.id <= ")
                    .bind::<SqlUuid, _>(uuid(search.ceiling))
                    .sql(" ORDER BY m.id DESC LIMIT ")
                    .bind::<BigInt, _>(i64::from(search.ranked))
                    .sql("), hits AS (SELECT c.id, ts_rank_cd(c.search_vector, $1::tsquery) AS rank FROM candidates c");
                if let Some(after) = search.after {
                    hits = hits
                        .sql(" WHERE (ts_rank_cd(c.search_vector, $1::tsquery), c.id) < (")
                        .bind::<Float4, _>(after.rank)
                        .sql(", ")
                        .bind::<SqlUuid, _>(uuid(after.id))
                        .sql(")");
                }
                hits.sql(" ORDER BY rank DESC, c.id DESC")
            }
            SearchSort::Newest => {
                if let Some(after) = search.after {
                    hits = hits.sql(" AND m.id < ").bind::<SqlUuid, _>(uuid(after.id));
                }
                hits.sql(" ORDER BY m.id DESC")
            }
        };
        // Snippets only for the page's rows.
        let statement = hits
            .sql(" LIMIT ")
            .bind::<BigInt, _>(i64::from(search.limit))
            .sql(") SELECT ")
            .sql(&message_columns("m"))
            // `<` as a space, as the index reads it, and markers out: character for character
            // the content the domain snippets.
            .sql(", hits.rank, ts_headline('skein_language', translate(m.content, ")
            .bind::<Text, _>(format!("<{HIGHLIGHT_START}{HIGHLIGHT_END}"))
            .sql(", ' '), $1::tsquery, ")
            .bind::<Text, _>(headline_options())
            .sql(") AS marked_content FROM hits JOIN messages m ON m.id = hits.id")
            .sql(match sort {
                SearchSort::Relevance => " ORDER BY hits.rank DESC, m.id DESC",
                SearchSort::Newest => " ORDER BY m.id DESC",
            });
        let mut conn = self.conn().await?;
        let rows: Vec<HitRow> = statement.query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(FoundMessage {
                    record: row.message.into_record()?,
                    rank: row.rank,
                    marked_content: row.marked_content,
                })
            })
            .collect()
    }
}
