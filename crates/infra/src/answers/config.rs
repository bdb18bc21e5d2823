//! The `[llm]` configuration: OpenAI-compatible providers and generation limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skein_domain::catalog::{CatalogProvider, ModelCatalog};

/// One OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter…).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// What assistants name it by.
    pub name: String,
    /// E.g. `https://api.openai.com/v1` or `http://localhost:11434/v1` (Ollama).
    pub base_url: String,
    /// The environment variable holding the API key; none for local servers.
    #[serde(default)]
    pub api_key_env: Option<String>,
    pub default_model: String,
    /// Models that may be named (by assistants, threads and requests). Empty: the default
    /// model and those listed in `context_windows`; `["*"]`: any model name.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// Seconds to wait for the response and for each next token before failing.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Context window per model, in tokens.
    #[serde(default)]
    pub context_windows: BTreeMap<String, u32>,
    /// Context window of models not listed.
    #[serde(default = "default_context_window")]
    pub default_context_window: u32,
}

fn default_timeout() -> u64 {
    60
}

fn default_context_window() -> u32 {
    8192
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    pub providers: Vec<ProviderConfig>,
    /// A reply's tokens when neither the request, the thread nor the assistant says.
    pub default_max_tokens: u32,
    /// The most tokens any answer may ask for; an assistant's `max_tokens` is a lower
    /// ceiling for its own answers.
    pub max_tokens_cap: u32,
    /// Streamed content is written to the database at most this often (milliseconds)…
    pub flush_interval_ms: u64,
    /// …or when this many characters are waiting, whichever comes first.
    pub flush_max_chars: usize,
    /// Running generations per user (across instances) and per instance.
    pub max_running_per_user: u32,
    pub max_running_per_instance: u32,
    /// How often (seconds) each instance looks for generations left running by instances
    /// that died, besides at start-up.
    pub recovery_interval_secs: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            default_max_tokens: 1024,
            max_tokens_cap: 16_384,
            flush_interval_ms: 250,
            flush_max_chars: 2048,
            max_running_per_user: 4,
            max_running_per_instance: 2000,
            recovery_interval_secs: 30,
        }
    }
}

impl LlmConfig {
    /// What the domain's rules need of the providers.
    pub fn catalog(&self) -> ModelCatalog {
        ModelCatalog {
            providers: self
                .providers
                .iter()
                .map(|p| CatalogProvider {
                    name: p.name.clone(),
                    default_model: p.default_model.clone(),
                    allowed_models: p.allowed_models.clone(),
                    context_windows: p.context_windows.clone(),
                    default_context_window: p.default_context_window,
                })
                .collect(),
            default_max_tokens: self.default_max_tokens,
            max_tokens_cap: self.max_tokens_cap,
            max_running_per_user: self.max_running_per_user,
        }
    }
}
