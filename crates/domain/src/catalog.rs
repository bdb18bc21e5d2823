//! The providers and models this server offers assistants, from its `[llm]` configuration:
//! the rules of which model may be used and how large its context is.

use std::collections::BTreeMap;

use crate::{DomainError, DomainResult};

/// One configured provider, as far as the rules need it.
#[derive(Clone, Debug, Default)]
pub struct CatalogProvider {
    pub name: String,
    pub default_model: String,
    /// The models that may be named. Empty: the default model and the models with a
    /// configured context window; `"*"`: any model string (for local servers that serve
    /// whatever they are asked for).
    pub allowed_models: Vec<String>,
    pub context_windows: BTreeMap<String, u32>,
    pub default_context_window: u32,
}

#[derive(Clone, Debug, Default)]
pub struct ModelCatalog {
    pub providers: Vec<CatalogProvider>,
    /// A reply's tokens when nothing else says.
    pub default_max_tokens: u32,
    /// Generations one user may have running at once (across instances).
    pub max_running_per_user: u32,
    /// The most tokens any answer may ask for (an assistant's `max_tokens` is its own,
    /// lower, ceiling).
    pub max_tokens_cap: u32,
}

/// The longest model name accepted.
pub const MODEL_MAX_CHARS: usize = 200;

impl CatalogProvider {
    /// Whether `model` may be named.
    pub fn allows(&self, model: &str) -> bool {
        if self.allowed_models.iter().any(|m| m == "*") {
            return model.chars().count() <= MODEL_MAX_CHARS;
        }
        if self.allowed_models.is_empty() {
            return model == self.default_model || self.context_windows.contains_key(model);
        }
        self.allowed_models.iter().any(|m| m == model)
    }

    /// The models to list (`"*"` lists none but the default).
    pub fn offered(&self) -> Vec<String> {
        let mut offered = vec![self.default_model.clone()];
        let named = if self.allowed_models.is_empty() {
            self.context_windows.keys().cloned().collect()
        } else {
            self.allowed_models.clone()
        };
        offered.extend(named.into_iter().filter(|m| *m != self.default_model && m != "*"));
        offered
    }
}

/// A usable provider and model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChoice {
    pub provider: String,
    pub model: String,
    pub context_window: u32,
}

impl ModelCatalog {
    /// The provider's model (its default when `model` is `None`); a 422 naming `field`s
    /// when the provider is not configured or the model not allowed.
    pub fn choose(&self, provider: &str, model: Option<&str>) -> DomainResult<ModelChoice> {
        let Some(p) = self.providers.iter().find(|p| p.name == provider) else {
            let known: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
            return Err(DomainError::field(
                "provider",
                "unknown",
                format!("no provider named {provider:?} is configured (configured: {})", known.join(", ")),
            ));
        };
        let model = model.unwrap_or(&p.default_model);
        if !p.allows(model) {
            let shown: String = model.chars().take(MODEL_MAX_CHARS).collect();
            return Err(DomainError::field(
                "model",
                "not_allowed",
                format!("{shown:?} is not an allowed model of {provider} ({})", p.offered().join(", ")),
            ));
        }
        let context_window = p.context_windows.get(model).copied().unwrap_or(p.default_context_window);
        Ok(ModelChoice { provider: p.name.clone(), model: model.to_owned(), context_window })
    }
}
