//! Workspace-visible channels on `/api/stream`: every non-guest member of the workspace
//! receives them without joining, live and on replay, until the channel turns private or
//! they leave the workspace; guests never do.

use serde_json::json;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[tokio::test]
async fn workspace_members_receive_open_channels_on_the_combined_stream_live_and_on_replay() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let (carol, guest) = (app.register("Carol").await, app.register("Gus").await);
    app.post(&format!("/api/workspaces/{}/members", r.ws), &r.alice, json!({ "user_id": carol.id })).await.expect(201);
    app.add_to_workspace(&r.alice, &r.ws, &guest, "guest").await;
    // Gus is a guest in `r.conv` (private) only; Carol is in no conversation at all.
    app.post(&format!("/api/conversations/{}/members", r.conv), &r.alice, json!({ "user_id": guest.id }))
        .await
        .expect(201);
    let mut carol_stream = SseClient::open(&app, &carol, "/api/stream", None).await;
    let mut guest_stream = SseClient::open(&app, &guest, "/api/stream", None).await;

    let open = app.open_channel(&r.alice, &r.ws, "town hall").await;
    app.root(&r.alice, &open, "all hands").await;
    // Its creation (Alice's membership) first, then the post.
    let created = carol_stream.until("thread.new").await;
    let kinds: Vec<&str> = created.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["membership.changed", "thread.new"]);
    let first = &created[1];
    assert_eq!(first.data["conversation_id"], open.as_str());
    assert_eq!(first.data["data"]["root"]["content"], "all hands");
    // Typing in it reaches her too (live only).
    app.post(&format!("/api/conversations/{open}/typing"), &r.alice, json!({ "typing": true })).await.expect(204);
    let typing = carol_stream.next().await;
    assert_eq!(typing.kind(), "typing.update");
    assert_eq!(typing.id, None);

    // The guest got none of it: the next thing on their stream is from `r.conv`.
    app.root(&r.alice, &r.conv, "for members").await;
    let next = guest_stream.next().await;
    assert_eq!(next.data["conversation_id"], r.conv.as_str(), "a guest never sees open channels: {next:?}");

    // Away: a post, the channel turning private, then a post she may no longer see.
    drop(carol_stream);
    app.root(&r.alice, &open, "missed").await;
    app.patch(&format!("/api/conversations/{open}"), &r.alice, json!({ "visibility": "private" })).await.expect(200);
    app.root(&r.alice, &open, "private now").await;
    let still_open = app.open_channel(&r.alice, &r.ws, "lobby").await;
    app.root(&r.alice, &still_open, "sentinel").await;
    let mut resumed = SseClient::open(&app, &carol, "/api/stream", first.id.as_deref()).await;
    let events = resumed.take(4).await;
    assert_eq!(events[0].data["data"]["root"]["content"], "missed");
    assert_eq!(events[1].kind(), "conversation.updated");
    assert_eq!(events[1].data["data"]["visibility"], "private");
    // Nothing more from that channel: the lobby's creation and post come next.
    assert_eq!(events[2].data["conversation_id"], still_open.as_str());
    assert_eq!(events[3].data["data"]["root"]["content"], "sentinel");

    // Live the same way: the change is her last event from the channel.
    app.patch(&format!("/api/conversations/{still_open}"), &r.alice, json!({ "visibility": "private" }))
        .await
        .expect(200);
    app.root(&r.alice, &still_open, "hidden").await;
    let made_private = resumed.next().await;
    assert_eq!(made_private.kind(), "conversation.updated");
    // Made workspace-visible again: she receives it from that change on, not what came between.
    app.patch(&format!("/api/conversations/{still_open}"), &r.alice, json!({ "visibility": "workspace" }))
        .await
        .expect(200);
    app.root(&r.alice, &still_open, "welcome back").await;
    let reopened = resumed.next().await;
    assert_eq!(reopened.kind(), "conversation.updated", "not the hidden post: {reopened:?}");
    assert_eq!(reopened.data["data"]["visibility"], "workspace");
    assert_eq!(resumed.next().await.data["data"]["root"]["content"], "welcome back");
}

#[tokio::test]
async fn leaving_the_workspace_ends_open_channels_on_every_stream() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let open = app.open_channel(&r.alice, &r.ws, "town hall").await;
    let mut all = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let mut one = SseClient::open(&app, &r.bob, &format!("/api/conversations/{open}/stream"), None).await;
    app.root(&r.alice, &open, "hello").await;
    let hello = all.next().await;
    assert_eq!(hello.data["data"]["root"]["content"], "hello");
    assert_eq!(one.next().await.data["data"]["root"]["content"], "hello");

    // Bob is demoted to guest: open channels stop at once, his own channel goes on.
    let member = format!("/api/workspaces/{}/members/{}", r.ws, r.bob.id);
    app.patch(&member, &r.alice, json!({ "role": "guest" })).await.expect(200);
    let change = all.next().await;
    assert_eq!(change.kind(), "workspace.membership.changed");
    assert_eq!(change.data["data"]["role"], "guest");
    assert_eq!(change.data.get("conversation_id"), None);
    // The per-conversation stream of a channel he can no longer see ends.
    assert!(matches!(one.next_within(std::time::Duration::from_secs(5)).await, Ok(None)), "the stream ended");
    app.root(&r.alice, &open, "not for guests").await;
    app.root(&r.alice, &r.conv, "his channel").await;
    assert_eq!(all.next().await.data["data"]["root"]["content"], "his channel");
    // And it cannot be reopened.
    let path = format!("/api/conversations/{open}/stream");
    let refused = SseClient::try_open(&app, Some(&r.bob.token), &path, None).await.err().map(|(status, _)| status);
    assert_eq!(refused, Some(404));

    // A replay from before the demotion stops at it for the open channel.
    let mut replayed = SseClient::open(&app, &r.bob, "/api/stream", hello.id.as_deref()).await;
    let events = replayed.take(2).await;
    assert_eq!(events[0].kind(), "workspace.membership.changed");
    assert_eq!(events[1].data["data"]["root"]["content"], "his channel");

    // Removed from the workspace: told on the combined stream, then nothing more from it.
    app.delete(&member, &r.alice).await.expect(204);
    let removed = all.take(2).await;
    assert_eq!(removed[0].kind(), "workspace.membership.changed");
    assert_eq!(removed[0].data["data"]["change"], "removed");
    assert_eq!(removed[1].kind(), "membership.changed", "and from his channel");
    app.root(&r.alice, &r.conv, "after he left").await;
    let other = app.register("Olga").await;
    let elsewhere = app.workspace(&other, &[&r.bob]).await;
    let sentinel = app.channel(&other, &elsewhere, &[&r.bob]).await;
    app.root(&other, &sentinel, "sentinel").await;
    let next = all.until("thread.new").await;
    assert_eq!(next.last().unwrap().data["data"]["root"]["content"], "sentinel", "nothing from the old workspace");
}

#[tokio::test]
async fn leaving_an_open_channel_hides_it_from_streams_until_joining_again_live_and_on_replay() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    // Bob is an implicit member of the open channel; `r.conv` carries the markers.
    let open = app.open_channel(&r.alice, &r.ws, "town hall").await;
    let mut all = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let one_path = format!("/api/conversations/{open}/stream");
    let mut one = SseClient::open(&app, &r.bob, &one_path, None).await;
    app.root(&r.alice, &open, "before").await;
    let before = all.next().await;
    assert_eq!(before.data["data"]["root"]["content"], "before");
    assert_eq!(one.next().await.data["data"]["root"]["content"], "before");

    app.post(&format!("/api/conversations/{open}/leave"), &r.bob, json!({})).await.expect(204);
    let left = all.next().await;
    assert_eq!((left.kind(), &left.data["data"]["change"]), ("membership.changed", &json!("left")));
    assert_eq!(left.data["data"]["user_id"], r.bob.id.as_str());
    // The channel's own stream hands over the leaving event and ends; it cannot be reopened.
    assert_eq!(one.next().await.kind(), "membership.changed");
    assert!(matches!(one.next_within(std::time::Duration::from_secs(5)).await, Ok(None)), "the stream ended");
    let refused = SseClient::try_open(&app, Some(&r.bob.token), &one_path, None).await.err().map(|(status, _)| status);
    assert_eq!(refused, Some(404));

    // Nothing of the channel while away: neither posts nor typing.
    app.root(&r.alice, &open, "while away").await;
    app.post(&format!("/api/conversations/{open}/typing"), &r.alice, json!({ "typing": true })).await.expect(204);
    app.root(&r.alice, &r.conv, "marker").await;
    let marker = all.next().await;
    assert_eq!(marker.data["data"]["root"]["content"], "marker", "nothing from the channel: {marker:?}");

    // Back: from the joining event on, as a member.
    app.post(&format!("/api/conversations/{open}/join"), &r.bob, json!({})).await.expect(201);
    let joined = all.next().await;
    assert_eq!((joined.kind(), &joined.data["data"]["change"]), ("membership.changed", &json!("joined")));
    app.root(&r.alice, &open, "back").await;
    let back = all.next().await;
    assert_eq!(back.data["data"]["root"]["content"], "back");

    // A replay from before leaving is the same stretch, event for event.
    let live: Vec<_> = [&left, &marker, &joined, &back].iter().map(|e| (e.id.clone(), e.kind().to_owned())).collect();
    let mut replay = SseClient::open(&app, &r.bob, "/api/stream", before.id.as_deref()).await;
    let replayed: Vec<_> = replay.take(4).await.iter().map(|e| (e.id.clone(), e.kind().to_owned())).collect();
    assert_eq!(live, replayed);
}
