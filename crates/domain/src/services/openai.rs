//! The OpenAI-compatible endpoint's rules: which `model`s a caller may name (the assistants of
//! their workspaces, and `provider/model` of the configured providers), what a request may
//! hold, and the two ways a call goes: bound to a thread (the last user message becomes a
//! reply there and the answer a Skein answer, through the same code as `reply`), or a plain
//! proxy to the provider that stores nothing.

use std::collections::HashMap;

use skein_shared::assistant::{Assistant, GenerateRequest, GenerationError};
use skein_shared::openai::{ChatCompletionRequest, Model, SkeinExchange};
use skein_shared::thread::{MessageRole, ReplyRequest, Via};
use skein_shared::{MessageId, UserId};

use super::generation::RETRY_AFTER_SECS;
use super::limits::Spend;
use super::threads::Ask;
use super::{AnswerFollow, Services};
use crate::context::PromptMessage;
use crate::ports::Ports;
use crate::ports::{ProxyCompletion, ProxyRequest};
use crate::validate::Check;
use crate::{DomainError, DomainResult};

/// Assistants looked at when resolving a `model` or listing them.
const ASSISTANTS_MAX: u32 = 500;
/// Messages a proxied request may carry.
const MESSAGES_MAX: usize = 1_000;

/// How a chat completion goes.
pub enum OpenAiChat {
    /// Stored: the caller's reply and the assistant's answer, followed from its start.
    Thread { exchange: SkeinExchange, follow: Box<AnswerFollow> },
    /// Nothing stored: the provider's completion as it streams.
    Proxy(Box<dyn ProxyCompletion>),
    /// The provider could not be asked (unreachable, refused, timed out).
    ProviderFailed(GenerationError),
}

/// What a `model` names.
enum Target {
    Assistant(Assistant),
    Provider { provider: String, model: String },
}

impl<P: Ports> Services<P> {
    /// `GET /v1/models`: the caller's assistants (by name, or by id where two share a name),
    /// then each configured provider's models as `provider/model`.
    pub async fn openai_models(&self, caller: UserId) -> DomainResult<Vec<Model>> {
        let assistants = self.ports.assistants_of_member(caller, ASSISTANTS_MAX).await?;
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (a, _) in &assistants {
            *names.entry(a.name.as_str()).or_default() += 1;
        }
        let mut models: Vec<Model> = assistants
            .iter()
            .map(|(a, workspace)| Model {
                id: if names[a.name.as_str()] == 1 { a.name.clone() } else { a.id.to_string() },
                object: "model".into(),
                created: a.created_at.unix_timestamp(),
                owned_by: workspace.clone(),
            })
            .collect();
        for provider in &self.catalog.providers {
            models.extend(provider.offered().into_iter().map(|model| Model {
                id: format!("{}/{model}", provider.name),
                object: "model".into(),
                created: 0,
                owned_by: provider.name.clone(),
            }));
        }
        Ok(models)
    }

    /// `POST /v1/chat/completions`. Everything is checked before anything is stored or any
    /// provider is called.
    pub async fn openai_chat(
        &self,
        caller: UserId,
        via: Via,
        req: &ChatCompletionRequest,
        thread: Option<MessageId>,
    ) -> DomainResult<OpenAiChat> {
        let mut check = Check::new();
        if req.messages.is_empty() || req.messages.len() > MESSAGES_MAX {
            check.fail("messages", "invalid", format!("send 1 to {MESSAGES_MAX} messages"));
        }
        if req.n.is_some_and(|n| n != 1) {
            check.fail("n", "unsupported", "Skein answers with one choice");
        }
        if req.tools.as_ref().is_some_and(|t| !t.is_empty()) || req.functions.as_ref().is_some_and(|f| !f.is_empty()) {
            check.fail("tools", "unsupported", "Skein's assistants do not call tools");
        }
        if req.logprobs == Some(true) {
            check.fail("logprobs", "unsupported", "Skein does not return log probabilities");
        }
        check.temperature("temperature", req.temperature);
        let max_tokens = req.max_completion_tokens.or(req.max_tokens);
        check.max_tokens("max_tokens", max_tokens);
        let mut prompt = Vec::with_capacity(req.messages.len());
        for (i, message) in req.messages.iter().enumerate() {
            let role = match message.role.as_str() {
                "system" | "developer" => MessageRole::System,
                "user" => MessageRole::User,
                "assistant" => MessageRole::Assistant,
                other => {
                    check.fail(
                        &format!("messages[{i}].role"),
                        "unsupported",
                        format!("role {other:?} is not supported"),
                    );
                    continue;
                }
            };
            match message.content.as_ref().map(|c| c.text()) {
                Some(Ok(content)) => prompt.push(PromptMessage { role, content }),
                Some(Err(kind)) => check.fail(
                    &format!("messages[{i}].content"),
                    "unsupported",
                    format!("content parts of type {kind:?} are not supported (text only)"),
                ),
                None => check.fail(&format!("messages[{i}].content"), "required", "a message needs content"),
            }
        }
        check.finish()?;
        let target = self.target(caller, &req.model).await?;
        match thread {
            Some(root) => self.thread_turn(caller, via, root, target, prompt, req.temperature, max_tokens).await,
            None => self.proxy(caller, target, prompt, req.temperature, max_tokens).await,
        }
    }

    /// The last user message as a reply at the thread's newest message, answered by the
    /// assistant named.
    #[allow(clippy::too_many_arguments)]
    async fn thread_turn(
        &self,
        caller: UserId,
        via: Via,
        root: MessageId,
        target: Target,
        prompt: Vec<PromptMessage>,
        temperature: Option<f32>,
        max_tokens: Option<u32>,
    ) -> DomainResult<OpenAiChat> {
        let Target::Assistant(assistant) = target else {
            return Err(DomainError::field(
                "model",
                "not_an_assistant",
                "a call bound to a thread is answered by an assistant: name one (see GET /v1/models)",
            ));
        };
        let content = match prompt.last() {
            Some(last) if last.role == MessageRole::User => last.content.clone(),
            _ => return Err(DomainError::field("messages", "invalid", "the last message must be the user's")),
        };
        let (record, ..) = self.visible_message(caller, root).await?;
        if record.message.root_id != root {
            return Err(DomainError::field("metadata.skein_thread", "not_a_root", "name a thread by its root message"));
        }
        let parent = self.ports.thread_leaf(root).await?.ok_or(DomainError::NotFound)?;
        let ask = GenerateRequest { assistant_id: Some(assistant.id), model: None, temperature, max_tokens };
        let reply = ReplyRequest { content, client_msg_id: None, generate: false };
        let stored = self.post_reply(caller, via, parent, reply, Ask::This(ask)).await?.into_inner();
        let answer = stored.assistant_message.ok_or_else(|| DomainError::Internal("no answer started".into()))?;
        let follow = self.follow_answer(caller, answer.id, 0).await?;
        Ok(OpenAiChat::Thread {
            exchange: SkeinExchange { root_id: root, message_id: stored.message.id, answer_id: answer.id },
            follow: Box::new(follow),
        })
    }

    async fn proxy(
        &self,
        caller: UserId,
        target: Target,
        mut prompt: Vec<PromptMessage>,
        temperature: Option<f32>,
        max_tokens: Option<u32>,
    ) -> DomainResult<OpenAiChat> {
        let (choice, temperature, assistant_tokens, workspace) = match target {
            Target::Assistant(a) => {
                if let Some(system) = a.system_prompt.as_ref().filter(|s| !s.trim().is_empty()) {
                    prompt.insert(0, PromptMessage { role: MessageRole::System, content: system.clone() });
                }
                let choice = self.catalog.choose(&a.provider, Some(&a.model))?;
                (choice, temperature.or(a.temperature), a.max_tokens, Some(a.workspace_id))
            }
            Target::Provider { provider, model } => {
                (self.catalog.choose(&provider, Some(&model))?, temperature, None, None)
            }
        };
        // As an answer in a thread: the same token ceiling, quota and per-user limit.
        let max_tokens = self.answer_tokens(assistant_tokens, max_tokens)?;
        self.check_quota(caller, workspace, Spend::Tokens).await?;
        let running = self.ports.running_generations(caller).await? + self.ports.running_proxies(caller);
        if running >= self.catalog.max_running_per_user {
            return Err(DomainError::RateLimited { retry_after_secs: RETRY_AFTER_SECS });
        }
        if !self.ports.has_generation_room() {
            return Err(DomainError::Busy { retry_after_secs: RETRY_AFTER_SECS });
        }
        let request =
            ProxyRequest { user: caller, workspace, model: choice.model, messages: prompt, temperature, max_tokens };
        Ok(match self.ports.proxy_chat(&choice.provider, request).await? {
            Ok(completion) => OpenAiChat::Proxy(completion),
            Err(e) => OpenAiChat::ProviderFailed(e),
        })
    }

    /// What `model` names for this caller: `provider/model` of a configured provider, else
    /// one of their assistants by id or by name.
    async fn target(&self, caller: UserId, model: &str) -> DomainResult<Target> {
        if let Some((provider, name)) = model.split_once('/')
            && self.catalog.providers.iter().any(|p| p.name == provider)
        {
            return Ok(Target::Provider { provider: provider.to_owned(), model: name.to_owned() });
        }
        let assistants = self.ports.assistants_of_member(caller, ASSISTANTS_MAX).await?;
        let mut named = assistants.into_iter().map(|(a, _)| a).filter(|a| a.id.to_string() == model || a.name == model);
        match (named.next(), named.next()) {
            (Some(a), None) => Ok(Target::Assistant(a)),
            (Some(_), Some(_)) => Err(DomainError::field(
                "model",
                "ambiguous",
                format!("several assistants are named {model:?}: use the id GET /v1/models lists"),
            )),
            (None, _) => Err(DomainError::field(
                "model",
                "unknown",
                format!("no assistant or provider model {model:?} here (see GET /v1/models)"),
            )),
        }
    }
}
