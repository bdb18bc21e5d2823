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
