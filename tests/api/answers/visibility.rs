//! What of a thread the model sees: only what the member who asked may see.

use super::*;

/// With history hidden from new members, an answer a late joiner asks for is built only
/// from what they may see: the earlier messages of the branch stay out of the prompt.
#[tokio::test]
async fn a_late_joiner_s_answer_sees_only_what_they_may() {
    let s = setup().await;
    let ws = s.app.get(&format!("/api/conversations/{}", s.conv), &s.owner).await.expect(200).str("workspace_id");
    let body =
        json!({ "workspace_id": ws, "kind": "channel", "title": "secret", "history_visible_to_new_members": false });
    let ch = s.app.post("/api/conversations", &s.owner, body).await.expect(201).str("id");
    let root = s
        .app
        .post(
            &format!("/api/threads/{ch}/root"),
            &s.owner,
            json!({ "content": "the launch code is 0000", "settings": { "assistant_id": s.assistant } }),
        )
        .await
        .expect(201)
        .str("id");
    let hidden = s.app.reply(&s.owner, &root, "and the vault is behind the painting").await;
    let late = s.app.register("Late").await;
    s.app.post(&format!("/api/workspaces/{ws}/members"), &s.owner, json!({ "user_id": late.id })).await.expect(201);
    s.app.post(&format!("/api/conversations/{ch}/members"), &s.owner, json!({ "user_id": late.id })).await.expect(201);
    let visible = s.app.reply(&s.owner, &hidden, "welcome! what do you think?").await;
    let answer = s.app.post(&format!("/api/messages/{visible}/generate"), &late, json!({})).await.expect(201);
    s.ended(answer.str("id").as_str()).await;
    let sent = s.llm.bodies().last().cloned().unwrap().to_string();
    assert!(sent.contains("welcome! what do you think?"), "{sent}");
    assert!(!sent.contains("launch code") && !sent.contains("vault"), "hidden history reached the model: {sent}");
    // The owner, who saw it all, gets it all.
    let answer = s.app.post(&format!("/api/messages/{visible}/generate"), &s.owner, json!({})).await.expect(201);
    s.ended(answer.str("id").as_str()).await;
    assert!(s.llm.bodies().last().unwrap().to_string().contains("launch code"));
}

/// A provider's own error text (which can name internal addresses or keys) reaches the log
/// and conversation admins; members and every event get the code and its summary.
#[tokio::test]
async fn provider_error_text_stays_with_admins() {
    let s = setup().await;
    let root = s.thread("fails").await;
    let mut stream = SseClient::open(&s.app, &s.member, &format!("/api/conversations/{}/stream", s.conv), None).await;
    let answer = s.generate(&root, "status-500").await;
    let id = answer["id"].as_str().unwrap();
    s.ended(id).await;
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await;
        let done = event.kind() == "message.done";
        seen.push(event.data.to_string());
        if done {
            break;
        }
    }
    let events = seen.join("\n");
    assert!(events.contains("provider_error"), "{events}");
    assert!(!events.contains("fake failure"), "the provider's words reached a member's stream: {events}");
    let as_member = s.app.get(&format!("/api/messages/{id}"), &s.member).await.expect(200).body;
    assert_eq!(as_member["generation"]["error"]["code"], "provider_error");
    assert!(!as_member.to_string().contains("fake failure"), "{as_member}");
    let as_admin = s.app.get(&format!("/api/messages/{id}"), &s.owner).await.expect(200).body;
    assert!(as_admin["generation"]["error"]["message"].as_str().unwrap().contains("fake failure 500"), "{as_admin}");
}
