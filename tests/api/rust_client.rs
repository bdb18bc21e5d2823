//! `skein-client` against the live server: the typed calls, problem errors, and event streams
//! that resume after a cut with no gap and no duplicate.

use skein_client::{Client, Error};
use skein_shared::ErrorCode;
use skein_shared::assistant::{CreateAssistantRequest, GenerateRequest};
use skein_shared::auth::{LoginRequest, RegisterRequest};
use skein_shared::conversation::{ConversationKind, CreateConversationRequest};
use skein_shared::event::EventBody;
use skein_shared::thread::{CreateRootRequest, HistoryParams, MessageStatus, ReplyRequest, TreeParams};
use skein_shared::{ConversationId, MessageId};
use skein_tests::TestApp;
use skein_tests::fake_llm::FakeLlm;
use skein_tests::sse::PATIENCE;

async fn signed_in(app: &TestApp, name: &str) -> Client {
    let anonymous = Client::new(&app.base);
    let email = format!("{}-{}@example.com", name.to_lowercase(), ulid::Ulid::generate());
    let request = RegisterRequest { email, password: "correct horse battery".into(), display_name: name.into() };
    let auth = anonymous.register(&request).await.unwrap();
    anonymous.with_token(auth.token)
}

async fn channel(client: &Client) -> ConversationId {
    let workspace = client.create_workspace("Acme").await.unwrap();
    let request = CreateConversationRequest {
        workspace_id: workspace.id,
        kind: ConversationKind::Channel,
        title: Some("general".into()),
        description: None,
        visibility: None,
        member_ids: Vec::new(),
        history_visible_to_new_members: None,
    };
    client.create_conversation(&request).await.unwrap().id
}

fn text(content: &str) -> CreateRootRequest {
    CreateRootRequest { content: content.into(), ..Default::default() }
}

#[tokio::test]
async fn typed_calls_page_history_and_walk_the_tree() {
    let app = TestApp::spawn().await;
    let ann = signed_in(&app, "Ann").await;
    let me = ann.current_user().await.unwrap();
    let credentials = LoginRequest { email: me.email.clone(), password: "correct horse battery".into() };
    assert_eq!(Client::new(&app.base).log_in(&credentials).await.unwrap().user.id, me.id);

    let conversation = channel(&ann).await;
    let root = ann.create_thread(conversation, &text("root")).await.unwrap();
    let reply = |parent: MessageId, content: &str| {
        let request = ReplyRequest { content: content.into(), ..Default::default() };
        let ann = ann.clone();
        async move { ann.reply(parent, &request).await.unwrap().message }
    };
    let a = reply(root.id, "a").await;
    let a1 = reply(a.id, "a1").await;
    let b = reply(root.id, "b").await;
    assert_eq!((a1.depth, a1.parent_id), (2, Some(a.id)));

    let tree = ann.thread_tree(root.id, &TreeParams::default()).await.unwrap();
    let order: Vec<MessageId> = tree.data.iter().map(|node| node.message.id).collect();
    assert_eq!(order, [root.id, a.id, a1.id, b.id], "depth first, siblings oldest first");

    // Two messages a page, newest page first, then back through `page.prev`.
    let page = |before| HistoryParams { before, limit: Some(2), ..Default::default() };
    let newest = ann.history(conversation, &page(None)).await.unwrap();
    let prev = newest.page.prev.as_deref().map(|c| c.parse().unwrap());
    let older = ann.history(conversation, &page(prev)).await.unwrap();
    let contents: Vec<&str> = older.data.iter().chain(&newest.data).map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["root", "a", "a1", "b"]);
}

#[tokio::test]
async fn problems_arrive_as_typed_errors() {
    let app = TestApp::spawn().await;
    let ann = signed_in(&app, "Ann").await;
    let bob = signed_in(&app, "Bob").await;
    let conversation = channel(&ann).await;

    let hidden = bob.create_thread(conversation, &text("hi")).await.unwrap_err();
    assert_eq!(hidden.code(), Some(ErrorCode::NotFound), "{hidden}");
    let Error::Api { status, problem } = ann.create_thread(conversation, &text("")).await.unwrap_err() else {
        panic!("not a problem")
    };
    assert_eq!((status, problem.code), (422, ErrorCode::ValidationFailed));
    assert_eq!(problem.errors[0].field, "content");
    let anonymous = Client::new(&app.base).current_user().await.unwrap_err();
    assert_eq!(anonymous.code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test]
async fn a_cut_event_stream_resumes_with_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let ann = signed_in(&app, "Ann").await;
    let conversation = channel(&ann).await;
    app.settle().await;
    let mut events = ann.conversation_events(conversation, None).await.unwrap();
    let mut posted = Vec::new();
    let mut seen = Vec::new();
    for round in 0..3 {
        for i in 0..4 {
            posted.push(ann.create_thread(conversation, &text(&format!("{round}.{i}"))).await.unwrap().id);
        }
        // Read two of this round's four, cut, post two more while the connection is down
        // (only a resumed connection can bring those).
        while seen.len() < posted.len() - 2 {
            let event = tokio::time::timeout(PATIENCE, events.next()).await.unwrap().unwrap().unwrap();
            if let EventBody::ThreadNew(thread) = event.body {
                seen.push(thread.root_id);
            }
        }
        events.disconnect();
        for i in 4..6 {
            posted.push(ann.create_thread(conversation, &text(&format!("{round}.{i}"))).await.unwrap().id);
        }
    }
    while seen.len() < posted.len() {
        let event = tokio::time::timeout(PATIENCE, events.next()).await.unwrap().unwrap().unwrap();
        if let EventBody::ThreadNew(thread) = event.body {
            seen.push(thread.root_id);
        }
    }
    assert_eq!(seen, posted);
    assert_eq!(events.connections(), 4);
    assert!(events.last_event_id().is_some());
}

#[tokio::test]
async fn an_answer_streams_from_the_fake_provider() {
    let llm = FakeLlm::start().await;
    let app = TestApp::spawn_with(|config| config.llm.providers = vec![llm.provider("fake")]).await;
    let ann = signed_in(&app, "Ann").await;
    let conversation = channel(&ann).await;
    let path = format!("/api/conversations/{conversation}");
    let workspace = ann.get::<skein_shared::conversation::Conversation>(&path).await.unwrap().workspace_id;
    let assistant = CreateAssistantRequest {
        name: "Helper".into(),
        provider: "fake".into(),
        model: None,
        system_prompt: None,
        temperature: None,
        max_tokens: None,
    };
    let assistant = ann.create_assistant(workspace, &assistant).await.unwrap();
    let root = ann.create_thread(conversation, &text("question")).await.unwrap();
    let request = GenerateRequest {
        assistant_id: Some(assistant.id),
        model: Some("tokens-6-every-20".into()),
        ..Default::default()
    };
    let answer = ann.generate_answer(root.id, &request).await.unwrap();
    assert_eq!(answer.status, MessageStatus::Streaming);

    let mut stream = ann.answer_stream(answer.id).await.unwrap();
    let mut content = String::new();
    let mut done = None;
    while let Some(event) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
        match event.unwrap().body {
            EventBody::MessageDelta(delta) => {
                content.push_str(&delta.delta);
                // One cut mid-answer: the resume continues from the characters received.
                if stream.connections() == 1 && content.len() > 4 {
                    stream.disconnect();
                }
            }
            EventBody::MessageDone(end) => done = Some(end),
            other => panic!("unexpected {}", other.kind()),
        }
    }
    let done = done.unwrap();
    assert_eq!(done.status, MessageStatus::Complete);
    assert_eq!(content, "t0 t1 t2 t3 t4 t5 ");
    assert_eq!(done.length as usize, content.chars().count());
    assert_eq!(stream.connections(), 2);
}

#[tokio::test]
async fn a_service_posts_with_an_api_key_until_it_is_revoked() {
    use skein_shared::api_key::{ApiScope, CreateApiKeyRequest};
    use skein_shared::thread::AuthorKind;
    let app = TestApp::spawn().await;
    let admin = signed_in(&app, "Ann").await;
    let workspace = admin.create_workspace("Acme").await.unwrap();
    let request = CreateConversationRequest {
        workspace_id: workspace.id,
        kind: ConversationKind::Channel,
        title: Some("alerts".into()),
        description: None,
        visibility: None,
        member_ids: Vec::new(),
        history_visible_to_new_members: None,
    };
    let alerts = admin.create_conversation(&request).await.unwrap().id;
    let key = CreateApiKeyRequest {
        name: "CI".into(),
        scopes: vec![ApiScope::Write, ApiScope::Read],
        conversation_ids: Some(vec![alerts]),
        expires_at: None,
    };
    let created = admin.create_api_key(workspace.id, &key).await.unwrap();
    let service = Client::new(&app.base).with_token(created.secret.clone());
    let posted = service.create_thread(alerts, &text("build 42 is green")).await.unwrap();
    assert_eq!((posted.author_kind, posted.via.api_key_id), (AuthorKind::Service, Some(created.key.id)));
    let listed = admin.list_api_keys(workspace.id).await.unwrap();
    assert_eq!(listed.data.iter().map(|k| k.id).collect::<Vec<_>>(), [created.key.id]);
    admin.revoke_api_key(workspace.id, created.key.id).await.unwrap();
    let refused = service.create_thread(alerts, &text("after revocation")).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Unauthenticated));
}
