//! The limits the validators enforce, published as schema constraints. utoipa's `#[schema]`
//! takes only literals (utoipa#1322), so the numbers come from here: the default `[limits]`
//! configuration and the validators' constants, applied to the finished document. A field
//! named here that the document lacks is reported (and a test fails), so the table cannot rot.

use skein_domain::Limits;
use skein_domain::validate::{MAX_TOKENS, TEMPERATURE_MAX};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::{OpenApi as Document, RefOr};

/// A constraint on one property.
#[derive(Clone, Copy)]
enum Constraint {
    /// Text of 1 to this many characters.
    Text(usize),
    /// Text of at most this many characters (blank counts as absent).
    OptionalText(usize),
    /// Text of at least this many characters.
    MinChars(usize),
    Email,
    /// A number in this range.
    Range(f64, f64),
    /// At most `items` items, each text of at most `chars` characters (0: not text).
    List {
        items: usize,
        chars: usize,
    },
}

fn table(limits: &Limits) -> Vec<(&'static str, &'static str, Constraint)> {
    use Constraint::{Email, List, MinChars, OptionalText, Range, Text};
    let content = Text(limits.message_max_chars);
    let title = OptionalText(limits.title_max_chars);
    let name = Text(limits.title_max_chars);
    let tags = List { items: limits.tags_max, chars: limits.tag_max_chars };
    let temperature = Range(0.0, f64::from(TEMPERATURE_MAX));
    let max_tokens = Range(1.0, f64::from(MAX_TOKENS));
    let client_msg_id = OptionalText(limits.client_msg_id_max_chars);
    vec![
        ("CreateRootRequest", "content", content),
        ("ReplyRequest", "content", content),
        ("EditMessageRequest", "content", content),
        ("CreateRootRequest", "client_msg_id", client_msg_id),
        ("ReplyRequest", "client_msg_id", client_msg_id),
        ("CreateRootRequest", "title", title),
        ("UpdateThreadRequest", "title", title),
        ("CreateConversationRequest", "title", title),
        ("UpdateConversationRequest", "title", title),
        ("ConvertConversationRequest", "title", title),
        ("CreateRootRequest", "tags", tags),
        ("UpdateThreadRequest", "tags", tags),
        ("CreateConversationRequest", "description", OptionalText(limits.description_max_chars)),
        ("UpdateConversationRequest", "description", OptionalText(limits.description_max_chars)),
        ("CreateConversationRequest", "member_ids", List { items: limits.initial_members_max, chars: 0 }),
        ("CreateWorkspaceRequest", "name", name),
        ("CreateAssistantRequest", "name", name),
        ("UpdateAssistantRequest", "name", title),
        ("CreateAssistantRequest", "system_prompt", OptionalText(limits.message_max_chars)),
        ("UpdateAssistantRequest", "system_prompt", OptionalText(limits.message_max_chars)),
        ("CreateAssistantRequest", "temperature", temperature),
        ("UpdateAssistantRequest", "temperature", temperature),
        ("GenerateRequest", "temperature", temperature),
        ("CreateAssistantRequest", "max_tokens", max_tokens),
        ("UpdateAssistantRequest", "max_tokens", max_tokens),
        ("GenerateRequest", "max_tokens", max_tokens),
        ("RegisterRequest", "display_name", Text(limits.display_name_max_chars)),
        ("RegisterRequest", "password", MinChars(limits.password_min_chars)),
        ("RegisterRequest", "email", Email),
        ("LoginRequest", "email", Email),
        ("AddWorkspaceMemberRequest", "email", Email),
    ]
}

/// Applies the limits to the document; returns the `Schema.property` names it could not find.
pub fn apply(doc: &mut Document, limits: &Limits) -> Vec<String> {
    let mut missing = Vec::new();
    let schemas = doc.components.as_mut().map(|c| &mut c.schemas);
    let Some(schemas) = schemas else { return vec!["components".to_owned()] };
    for (schema, property, constraint) in table(limits) {
        let target = match schemas.get_mut(schema) {
            Some(RefOr::T(Schema::Object(object))) => object.properties.get_mut(property),
            _ => None,
        };
        let applied = match target {
            Some(RefOr::T(target)) => constrain(target, constraint),
            _ => false,
        };
        if !applied {
            missing.push(format!("{schema}.{property}"));
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get].into_iter().flatten() {
            page_limit(op, limits);
        }
    }
    missing
}

/// Whether the constraint fits the property's schema (text on a string, a range on a number…).
fn constrain(target: &mut Schema, constraint: Constraint) -> bool {
    match (target, constraint) {
        (Schema::Object(text), Constraint::Text(max)) => {
            text.min_length = Some(1);
            text.max_length = Some(max);
        }
        (Schema::Object(text), Constraint::OptionalText(max)) => text.max_length = Some(max),
        (Schema::Object(text), Constraint::MinChars(min)) => text.min_length = Some(min),
        (Schema::Object(text), Constraint::Email) => text.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email)),
        (Schema::Object(number), Constraint::Range(min, max)) => {
            number.minimum = Some(min.into());
            number.maximum = Some(max.into());
        }
        (Schema::Array(list), Constraint::List { items, chars }) => {
            list.max_items = Some(items);
            if chars > 0 {
                let ArrayItems::RefOrSchema(item) = &mut list.items else { return false };
                let RefOr::T(Schema::Object(text)) = item.as_mut() else { return false };
                text.max_length = Some(chars);
            }
        }
        _ => return false,
    }
    true
}

/// `limit` query parameters: 1 to the largest page (a tree's own for trees).
fn page_limit(op: &mut Operation, limits: &Limits) {
    let max = match op.operation_id.as_deref() {
        Some("get_thread_tree") => limits.tree_page_max,
        _ => limits.page_max,
    };
    for param in op.parameters.iter_mut().flatten() {
        let RefOr::T(param) = param else { continue };
        if param.name == "limit"
            && param.parameter_in == ParameterIn::Query
            && let Some(RefOr::T(Schema::Object(number))) = param.schema.as_mut()
        {
            number.minimum = Some(1.into());
            number.maximum = Some(max.into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    #[test]
    fn every_limit_names_a_property_of_the_right_kind() {
        let mut doc = crate::openapi_document();
        assert_eq!(super::apply(&mut doc, &skein_domain::Limits::default()), Vec::<String>::new());
    }
}
