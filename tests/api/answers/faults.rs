//! Answers under faults: a terminal write that fails, text PostgreSQL refuses, a lost
//! liveness lock, a generation ended by someone else. Faults are real: a trigger in the
//! test's schema refuses writes, PostgreSQL terminates a session, another party writes.

use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::*;

/// Makes the next `times` terminal writes of generations fail inside PostgreSQL (as a pool
/// timeout or a dropped connection would make them fail), then lets them through.
async fn refuse_terminal_writes(app: &TestApp, times: u32) {
    let mut db = app.db().await;
    for statement in [
        "CREATE SEQUENCE end_faults".to_owned(),
        format!(
            "CREATE FUNCTION refuse_end() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF nextval('end_faults') <= {times} THEN RAISE EXCEPTION 'injected fault: end refused'; END IF; \
               RETURN NEW; END $$"
        ),
        "CREATE TRIGGER refuse_end BEFORE UPDATE OF finished_at ON generations FOR EACH ROW \
           WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL) EXECUTE FUNCTION refuse_end()"
            .to_owned(),
    ] {
        diesel::sql_query(statement).execute(&mut db).await.unwrap();
    }
}

async fn faults_fired(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Fired {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last_value: i64,
    }
    let mut db = app.db().await;
    let fired: Fired = diesel::sql_query("SELECT last_value FROM end_faults").get_result(&mut db).await.unwrap();
    fired.last_value
}

#[tokio::test]
async fn a_terminal_write_that_fails_once_is_retried() {
    let s = setup().await;
    let root = s.thread("Retry the end").await;
    let mut sse = s.conversation_stream().await;
    refuse_terminal_writes(&s.app, 1).await;
    let id = s.generate(&root, "tokens-5").await["id"].as_str().unwrap().to_owned();
    let events = events_of(&mut sse, &id).await;
    assert_eq!(events.iter().filter(|e| e["type"] == "message.done").count(), 1);
    assert_eq!(events.last().unwrap()["data"]["status"], "complete");
    let stored = s.ended(&id).await;
    assert_eq!((stored["status"].as_str(), stored["content"].as_str()), (Some("complete"), Some(tokens(5).as_str())));
    assert_eq!(faults_fired(&s.app).await, 2, "refused once, written by the second attempt");
}

#[tokio::test]
async fn an_end_that_cannot_be_written_is_ended_by_recovery_with_its_content() {
    let s = setup().await;
    let root = s.thread("Lose the end").await;
    let mut sse = s.conversation_stream().await;
    // Every attempt the runner makes fails; recovery's write goes through.
    refuse_terminal_writes(&s.app, 5).await;
    let id = s.generate(&root, "tokens-5").await["id"].as_str().unwrap().to_owned();
    let events = events_of(&mut sse, &id).await;
    let done = &events.last().unwrap()["data"];
    assert_eq!((done["status"].as_str(), done["finish_reason"].as_str()), (Some("failed"), Some("interrupted")));
    let stored = s.ended(&id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["content"], tokens(5), "the runner's whole content is kept");
    assert_eq!(stored["generation"]["error"]["code"], "interrupted");
    assert_eq!(faults_fired(&s.app).await, 6);
    // Exactly one end, and the running count is released: the same message can be answered
    // again, and the user is not held at the limit.
    let after = sse.next_within(Duration::from_millis(300)).await;
    assert!(!matches!(after, Ok(Some(ref e)) if e.data["message_id"] == id.as_str()), "{after:?}");
    let again = s.generate(&root, "tokens-2").await["id"].as_str().unwrap().to_owned();
    assert_eq!(s.ended(&again).await["status"], "complete");
}

#[tokio::test]
async fn text_postgresql_refuses_is_dropped_and_never_stops_other_answers() {
    let s = setup_with(|config| config.llm.flush_interval_ms = 20).await;
    let root = s.thread("NUL").await;
    let other = s.thread("Plain").await;
    let mut sse = s.conversation_stream().await;
    let nul = s.generate(&root, "nul-20-every-10").await["id"].as_str().unwrap().to_owned();
    let plain = s.generate(&other, "tokens-20-every-10").await["id"].as_str().unwrap().to_owned();
    let relayed = concatenated(&events_of(&mut sse, &nul).await);
    assert_eq!(relayed, tokens(20), "NUL is dropped before it is relayed");
    for (id, expected) in [(&nul, tokens(20)), (&plain, tokens(20))] {
        let stored = s.ended(id).await;
        assert_eq!(
            (stored["status"].as_str(), stored["content"].as_str()),
            (Some("complete"), Some(expected.as_str()))
        );
        let chunks = s.app.get(&format!("/api/messages/{id}/chunks"), &s.owner).await.expect(200).body;
        let chunks = chunks["data"].as_array().unwrap();
        assert!(chunks.len() > 1, "flushed while it streamed: {chunks:?}");
        let rebuilt: String = chunks.iter().map(|c| c["content"].as_str().unwrap()).collect();
        assert_eq!(rebuilt, expected);
    }
}

/// The backend holding the liveness lock of the runner of `message`, if any.
async fn lock_holder(db: &mut AsyncPgConnection, message: &str) -> Option<i32> {
    #[derive(diesel::QueryableByName)]
    struct Holder {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let id = uuid::Uuid::from(message.parse::<ulid::Ulid>().unwrap());
    let holder: Option<Holder> = diesel::sql_query(
        "SELECT l.pid FROM pg_locks l, generations g \
         WHERE g.message_id = $1 AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(g.runner::text, 1)",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .get_result(db)
    .await
    .ok();
    holder.map(|h| h.pid)
}

#[tokio::test]
async fn a_lost_liveness_lock_is_taken_again_and_the_answer_completes() {
    let s = setup().await;
    let root = s.thread("Keep the lock").await;
    let id = s.generate(&root, "tokens-60-every-50").await["id"].as_str().unwrap().to_owned();
    let mut db = s.app.db().await;
    let first = lock_holder(&mut db, &id).await.expect("the runner's instance holds its lock");
    diesel::sql_query(format!("SELECT pg_terminate_backend({first})")).execute(&mut db).await.unwrap();
    let mut again = None;
    for _ in 0..100 {
        again = lock_holder(&mut db, &id).await.filter(|pid| *pid != first);
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the instance takes its liveness lock again on a new connection");
    let stored = s.ended(&id).await;
    assert_eq!((stored["status"].as_str(), stored["content"].as_str()), (Some("complete"), Some(tokens(60).as_str())));
}

#[tokio::test]
async fn a_runner_whose_answer_was_ended_elsewhere_stops() {
    let s = setup().await;
    let root = s.thread("Ended elsewhere").await;
    let mut sse = s.conversation_stream().await;
    let id = s.generate(&root, "tokens-200-every-20").await["id"].as_str().unwrap().to_owned();
    loop {
        let e = sse.next().await;
        if e.kind() == "message.delta" && e.data["data"]["offset"].as_u64().unwrap() > 20 {
            break;
        }
    }
    // What another instance's recovery writes when it believes this one gone.
    let mut db = s.app.db().await;
    let ulid_id = uuid::Uuid::from(id.parse::<ulid::Ulid>().unwrap());
    diesel::sql_query(
        "UPDATE generations SET finished_at = now(), finish_reason = 'interrupted' WHERE message_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(ulid_id)
    .execute(&mut db)
    .await
    .unwrap();
    // The runner notices at its next flush and drops the provider's stream.
    for _ in 0..100 {
        if s.llm.aborted() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.llm.aborted(), 1, "the provider request is aborted");
    assert!(s.llm.tokens_sent() < 200);
    let stored = s.message(&id).await;
    assert_eq!(stored["generation"]["finish_reason"], "interrupted", "the other party's end stands");
}

#[tokio::test]
async fn a_cancel_waiting_for_another_instance_holds_no_connection() {
    // Two connections per instance, and a short wait for one: a cancel that held a
    // connection while it waits would starve every other request.
    let s = setup_with(|config| {
        config.database.max_connections = 2;
        config.database.acquire_timeout_ms = 300;
        config.llm.recovery_interval_secs = 3600;
    })
    .await;
    let peer = s.app.peer().await;
    let root = s.thread("Cancel from afar").await;
    let id = s.generate(&root, "tokens-400-every-20").await["id"].as_str().unwrap().to_owned();
    // The running instance no longer recognises the generation as its own, so the cancel
    // request is never taken up and the peer's cancel waits its whole wait.
    let mut db = s.app.db().await;
    let message = uuid::Uuid::from(id.parse::<ulid::Ulid>().unwrap());
    diesel::sql_query("UPDATE generations SET runner = gen_random_uuid() WHERE message_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(message)
        .execute(&mut db)
        .await
        .unwrap();
    let cancels: Vec<_> = (0..2)
        .map(|_| {
            let (client, owner, path) =
                (TestApp::client_for(&peer.base), s.owner.clone(), format!("/api/messages/{id}/cancel"));
            tokio::spawn(async move { client.post(&path, &owner, json!({})).await.status })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        peer.get(&format!("/api/messages/{id}"), &s.owner).await.expect(200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for cancel in cancels {
        assert_eq!(cancel.await.unwrap(), 200);
    }
}

/// Each answer's events on a stream, until every one of `ids` has ended.
async fn transcripts(stream: &mut SseClient, ids: &[String]) -> std::collections::HashMap<String, Vec<Value>> {
    let mut by_answer: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let mut ended = 0;
    while ended < ids.len() {
        let event = stream.next().await.data;
        let Some(id) = event["message_id"].as_str().filter(|id| ids.iter().any(|i| i == id)) else { continue };
        if !matches!(event["type"].as_str(), Some("message.delta" | "message.done")) {
            continue;
        }
        ended += usize::from(event["type"] == "message.done");
        by_answer.entry(id.to_owned()).or_default().push(event);
    }
    by_answer
}

#[tokio::test]
async fn across_instances_an_answers_deltas_all_come_before_its_end() {
    let s = setup_with(|config| {
        config.realtime.fanout.mode = skein_infra::realtime::FanoutMode::Postgres;
        // The hub reads the log very often: a `message.done` read from the log races the
        // deltas crossing by NOTIFY.
        config.realtime.poll_interval_ms = 5;
        // Thirteen answers start back to back; the test is not about the per-user cap.
        config.llm.max_running_per_user = 32;
    })
    .await;
    let peer = s.app.peer().await;
    let path = format!("/api/conversations/{}/stream", s.conv);
    let mut elsewhere = SseClient::open(&peer, &s.owner, &path, None).await;
    let mut here = SseClient::open(&s.app, &s.owner, &path, None).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let root = s.thread(&format!("question {i}")).await;
        ids.push(s.generate(&root, "tokens-40-every-1").await["id"].as_str().unwrap().to_owned());
    }
    // Deltas longer than one NOTIFY payload cross too.
    let root = s.thread("wide").await;
    ids.push(s.generate(&root, "wide-3").await["id"].as_str().unwrap().to_owned());
    for stream in [&mut elsewhere, &mut here] {
        let by_answer = transcripts(stream, &ids).await;
        for id in &ids {
            let events = &by_answer[id];
            let stored = s.ended(id).await["content"].as_str().unwrap().to_owned();
            let (last, deltas) = events.split_last().unwrap();
            assert_eq!(last["type"], "message.done", "the end comes last");
            assert!(deltas.iter().all(|e| e["type"] == "message.delta"), "one end, after every delta");
            assert_eq!(concatenated(deltas), stored, "every delta, in order, before the end");
            assert_eq!(last["data"]["length"].as_u64(), Some(stored.chars().count() as u64));
        }
        // Nothing of theirs after their ends.
        while let Ok(Some(e)) = stream.next_within(Duration::from_millis(300)).await {
            assert!(!ids.iter().any(|id| e.data["message_id"] == id.as_str()), "{:?}", e.data);
        }
    }
}

#[tokio::test]
async fn corrupt_thread_settings_are_an_error_not_no_assistant() {
    let s = setup().await;
    let root = s.thread("Settings").await;
    let mut db = s.app.db().await;
    diesel::sql_query("UPDATE threads SET settings = '{\"temperature\": \"hot\"}'").execute(&mut db).await.unwrap();
    let refused = s.app.post(&format!("/api/messages/{root}/generate"), &s.owner, json!({})).await;
    refused.expect_problem(500, "internal");
    let tree = s.app.get(&format!("/api/threads/{root}/tree"), &s.owner).await;
    tree.expect_problem(500, "internal");
}
