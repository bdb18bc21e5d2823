use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use skein_domain::DomainResult;
use skein_domain::ports::AssistantRepo;
use skein_shared::assistant::Assistant;
use skein_shared::{AssistantId, UserId, WorkspaceId};
use time::OffsetDateTime;
use ulid::Ulid;
use uuid::Uuid;

use crate::store::codec::{ulid, uuid};
use crate::store::schema::{assistants, workspace_members, workspaces};
use crate::store::{Store, db_error};

#[derive(Queryable, Selectable)]
#[diesel(table_name = assistants)]
struct AssistantRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    provider: String,
    model: String,
    system_prompt: Option<String>,
    temperature: Option<f32>,
    max_tokens: Option<i32>,
    created_by: Uuid,
    created_at: OffsetDateTime,
}

impl From<AssistantRow> for Assistant {
    fn from(r: AssistantRow) -> Self {
        Assistant {
            id: AssistantId(ulid(r.id)),
            workspace_id: WorkspaceId(ulid(r.workspace_id)),
            name: r.name,
            provider: r.provider,
            model: r.model,
            system_prompt: r.system_prompt,
            temperature: r.temperature,
            max_tokens: r.max_tokens.map(|n| n.max(0) as u32),
            created_by: UserId(ulid(r.created_by)),
            created_at: r.created_at,
        }
    }
}

/// The columns a create sets and an update may change.
#[derive(AsChangeset, Insertable)]
#[diesel(table_name = assistants, treat_none_as_null = true)]
struct AssistantChanges<'a> {
    name: &'a str,
    provider: &'a str,
    model: &'a str,
    system_prompt: Option<&'a str>,
    temperature: Option<f32>,
    max_tokens: Option<i32>,
}

impl<'a> From<&'a Assistant> for AssistantChanges<'a> {
    fn from(a: &'a Assistant) -> Self {
        Self {
            name: &a.name,
            provider: &a.provider,
            model: &a.model,
            system_prompt: a.system_prompt.as_deref(),
            temperature: a.temperature,
            max_tokens: a.max_tokens.map(|n| n as i32),
        }
    }
}

impl AssistantRepo for Store {
    async fn create_assistant(&self, a: Assistant) -> DomainResult<Assistant> {
        let mut conn = self.conn().await?;
        let row = diesel::insert_into(assistants::table)
            .values((
                assistants::id.eq(uuid(a.id)),
                assistants::workspace_id.eq(uuid(a.workspace_id)),
                AssistantChanges::from(&a),
                assistants::created_by.eq(uuid(a.created_by)),
                assistants::created_at.eq(a.created_at),
            ))
            .returning(AssistantRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(row.into())
    }

    async fn list_assistants(
        &self,
        workspace: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> DomainResult<Vec<Assistant>> {
        let mut conn = self.conn().await?;
        let mut query = assistants::table
            .filter(assistants::workspace_id.eq(uuid(workspace)))
            .filter(assistants::deleted_at.is_null())
            .select(AssistantRow::as_select())
            .order(assistants::id)
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(assistants::id.gt(uuid(after)));
        }
        let rows: Vec<AssistantRow> = query.load(&mut conn).await.map_err(db_error)?;
        Ok(rows.into_iter().map(Assistant::from).collect())
    }

    async fn assistants_of_member(&self, user: UserId, limit: u32) -> DomainResult<Vec<(Assistant, String)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(AssistantRow, String)> = assistants::table
            .inner_join(
                workspace_members::table.on(workspace_members::workspace_id
                    .eq(assistants::workspace_id)
                    .and(workspace_members::user_id.eq(uuid(user)))),
            )
            .inner_join(workspaces::table.on(workspaces::id.eq(assistants::workspace_id)))
            .filter(assistants::deleted_at.is_null())
            .select((AssistantRow::as_select(), workspaces::name))
            .order(assistants::id)
            .limit(i64::from(limit))
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|(row, workspace)| (Assistant::from(row), workspace)).collect())
    }

    async fn find_assistant(&self, id: AssistantId) -> DomainResult<Option<Assistant>> {
        let mut conn = self.conn().await?;
        let row: Option<AssistantRow> = assistants::table
            .find(uuid(id))
            .filter(assistants::deleted_at.is_null())
            .select(AssistantRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(row.map(Assistant::from))
    }

    async fn update_assistant(&self, a: Assistant) -> DomainResult<Assistant> {
        let mut conn = self.conn().await?;
        let row = diesel::update(assistants::table.find(uuid(a.id)))
            .set(AssistantChanges::from(&a))
            .returning(AssistantRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(row.into())
    }

    async fn delete_assistant(&self, id: AssistantId) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        diesel::update(assistants::table.find(uuid(id)))
            .set(assistants::deleted_at.eq(self.clock.now()))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
