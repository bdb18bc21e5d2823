//! Search over 1,000,000 messages: 10 workspaces of 10 people and 100 private channels each
//! (so each person sees 100 conversations and 100,000 messages), plus an auditor in all 1,000
//! channels. Every channel holds 100 threads of a root and 9 replies spread over a year.
//!
//! Text is drawn word by word from `tests/data/words.txt` (5,000 English words, most frequent
//! first) with Zipf's law; one message in ten also names the product ("skein"), so one word
//! matches 100,000 messages. Rows go in with `COPY` on two connections, and the search trigger
//! indexes them as they arrive (the seeding time includes it).
//!
//! Then, at 8 concurrent HTTP clients, each query kind for a few seconds (p50/p99), next to the
//! same query as a plain `ILIKE '%…%'` scan in SQL over the same scope, in the same run.

use std::fmt::Write as _;
use std::time::Instant;

use diesel::sql_types::{Array, BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::SinkExt;
use skein_tests::{TestApp, TestUser};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{Stats, load};

const WORKSPACES: usize = 10;
const PEOPLE_PER_WORKSPACE: usize = 10;
const CHANNELS_PER_WORKSPACE: usize = 100;
const THREADS_PER_CHANNEL: usize = 100;
const MESSAGES_PER_THREAD: usize = 10;
const CLIENTS: usize = 8;
const PAGE: &str = "20";
/// The word one message in ten contains.
const COMMON: &str = "skein";
const WORDS: &str = include_str!("../../../data/words.txt");

/// xorshift64*: deterministic text for every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Words drawn by rank with probability ∝ 1/rank.
struct Zipf<'a> {
    words: Vec<&'a str>,
    cumulative: Vec<f64>,
}

impl<'a> Zipf<'a> {
    fn new(text: &'a str) -> Self {
        let words: Vec<&str> = text.lines().filter(|w| !w.is_empty()).collect();
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }
    fn draw(&self, rng: &mut Rng) -> usize {
        let target = rng.unit() * self.cumulative[self.cumulative.len() - 1];
        self.cumulative.partition_point(|&c| c < target).min(self.words.len() - 1)
    }
}

/// What the seeding made: who sees what, and words to look for.
struct Corpus {
    people: Vec<TestUser>,
    auditor: TestUser,
    /// Channels by workspace.
    channels: Vec<Vec<String>>,
    /// Per workspace, 3 consecutive words of some of its messages.
    phrases: Vec<Vec<String>>,
    /// How many messages contain each word (by rank).
    document_frequency: Vec<u32>,
}

pub async fn run() {
    // With BENCH_SEARCH_KEEP set (or after a panic) the schema stays, to EXPLAIN queries on it.
    let app = std::mem::ManuallyDrop::new(
        TestApp::spawn_with(|c| {
            c.database.max_connections = CLIENTS;
            c.auth.argon2_memory_kib = 19 * 1024;
            c.auth.argon2_passes = 2;
        })
        .await,
    );
    let zipf = Zipf::new(WORDS);
    let mut corpus = seed(&app, &zipf).await;

    // Search words: between 0.3% and 1.5% of messages (the words people look for), not stop words.
    let total = (WORKSPACES * CHANNELS_PER_WORKSPACE * THREADS_PER_CHANNEL * MESSAGES_PER_THREAD) as f64;
    let mut conn = app.db().await;
    let mut words = Vec::new();
    for (rank, &count) in corpus.document_frequency.iter().enumerate() {
        let share = f64::from(count) / total;
        if (0.003..=0.015).contains(&share) && zipf.words[rank].len() >= 5 && indexed(&mut conn, zipf.words[rank]).await
        {
            words.push(zipf.words[rank]);
        }
        if words.len() == 16 {
            break;
        }
    }
    // A prefix that is itself a stop word (`some`) has nothing to search yet.
    let mut prefixes: Vec<&str> = Vec::new();
    for word in &words {
        if indexed(&mut conn, &word[..4]).await {
            prefixes.push(&word[..4]);
        }
    }
    // A phrase of stop words only (`is they who`) has nothing to search.
    for phrases in &mut corpus.phrases {
        let mut kept = Vec::new();
        for phrase in phrases.drain(..) {
            if indexed(&mut conn, &phrase).await {
                kept.push(phrase);
            }
        }
        *phrases = kept;
    }
    let common_matches = count_matches(&mut conn, COMMON).await;
    println!(
        "\nsearch words: {} (0.3–1.5% of messages each); prefixes: {}; {COMMON:?} in {common_matches} messages",
        words.join(", "),
        prefixes.join(", ")
    );

    println!(
        "\n## Search over {total:.0} messages: Skein over HTTP vs ILIKE in SQL ({CLIENTS} clients, {}s each, pages of {PAGE})\n",
        super::PHASE.as_secs()
    );
    println!(
        "| query | scope | search p50 ms | search p99 ms | search req/s | ILIKE p50 ms | ILIKE p99 ms | ILIKE req/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");

    let baseline = Baseline::connect(&app.db_url).await;
    let person = |c: usize, i: usize| (c * 13 + i * 7) % corpus.people.len();
    let workspace_of = |p: usize| p / PEOPLE_PER_WORKSPACE;
    let whole = |w: usize| corpus.channels[w].clone();

    // One conversation.
    let http = load(CLIENTS, |c, i| {
        let p = person(c, i);
        let conversation = &corpus.channels[workspace_of(p)][i % CHANNELS_PER_WORKSPACE];
        let q = format!("{} ", words[i % words.len()]);
        // A conversation of 1,000 messages may lack the word: not asserted.
        may_find(search(&app, &corpus.people[p], vec![("q", q), ("conversation_id", conversation.clone())]))
    })
    .await;
    let sql = load(CLIENTS, |c, i| {
        let p = person(c, i);
        let scope = vec![corpus.channels[workspace_of(p)][i % CHANNELS_PER_WORKSPACE].clone()];
        may_find(baseline.ilike(c, scope, words[i % words.len()].to_owned()))
    })
    .await;
    row("one word", "1 conversation (1,000 messages)", http, Some(sql));

    // Everything a person sees.
    let http = load(CLIENTS, |c, i| {
        let p = person(c, i);
        must_find(search(&app, &corpus.people[p], vec![("q", format!("{} ", words[i % words.len()]))]))
    })
    .await;
    let sql = load(CLIENTS, |c, i| {
        must_find(baseline.ilike(c, whole(workspace_of(person(c, i))), words[i % words.len()].to_owned()))
    })
    .await;
    row("one word", "100 conversations (100,000 messages)", http, Some(sql));

    let http = load(CLIENTS, |c, i| {
        let p = person(c, i);
        let phrases = &corpus.phrases[workspace_of(p)];
        must_find(search(&app, &corpus.people[p], vec![("q", format!("\"{}\"", phrases[i % phrases.len()]))]))
    })
    .await;
    let sql = load(CLIENTS, |c, i| {
        let w = workspace_of(person(c, i));
        must_find(baseline.ilike(c, whole(w), corpus.phrases[w][i % corpus.phrases[w].len()].clone()))
    })
    .await;
    row("3-word phrase", "100 conversations", http, Some(sql));

    let http = load(CLIENTS, |c, i| {
        must_find(search(&app, &corpus.people[person(c, i)], vec![("q", prefixes[i % prefixes.len()].to_owned())]))
    })
    .await;
    let sql = load(CLIENTS, |c, i| {
        must_find(baseline.ilike(c, whole(workspace_of(person(c, i))), prefixes[i % prefixes.len()].to_owned()))
    })
    .await;
    row("prefix (4 letters, as typed)", "100 conversations", http, Some(sql));

    let everything: Vec<String> = corpus.channels.concat();
    let common = format!("{COMMON} ");
    let http = load(CLIENTS, |_, _| {
        must_find(search(&app, &corpus.auditor, vec![("q", common.clone()), ("sort", "newest".into())]))
    })
    .await;
    let sql = load(CLIENTS, |c, _| must_find(baseline.ilike(c, everything.clone(), COMMON.to_owned()))).await;
    row(&format!("word in {common_matches} messages, newest"), "1,000 conversations", http, Some(sql));

    let http = load(CLIENTS, |_, _| must_find(search(&app, &corpus.auditor, vec![("q", common.clone())]))).await;
    row(&format!("word in {common_matches} messages, relevance"), "1,000 conversations", http, None);

    if std::env::var_os("BENCH_SEARCH_KEEP").is_some() {
        println!("\nsearch: data kept: {}", app.db_url);
    } else {
        drop(std::mem::ManuallyDrop::into_inner(app));
    }
}

/// Asserts that a query found something: a query that finds nothing measures nothing.
async fn must_find(query: impl std::future::Future<Output = bool>) {
    assert!(query.await, "a benchmark query found nothing");
}

async fn may_find(query: impl std::future::Future<Output = bool>) {
    query.await;
}

/// Whether PostgreSQL indexes the word (it is not a stop word).
async fn indexed(conn: &mut AsyncPgConnection, word: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Terms {
        #[diesel(sql_type = Text)]
        terms: String,
    }
    let row: Terms = diesel::sql_query("SELECT websearch_to_tsquery('skein_language', $1)::text AS terms")
        .bind::<Text, _>(word)
        .get_result(conn)
        .await
        .unwrap();
    !row.terms.is_empty()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count_matches(conn: &mut AsyncPgConnection, word: &str) -> i64 {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM messages WHERE search_vector @@ websearch_to_tsquery('skein_language', $1)",
    )
    .bind::<Text, _>(word)
    .get_result(conn)
    .await
    .unwrap();
    row.n
}

/// One search request, timed to its last byte (parsing is the client's business); whether it
/// found something.
async fn search(app: &TestApp, user: &TestUser, mut params: Vec<(&'static str, String)>) -> bool {
    params.push(("limit", PAGE.to_owned()));
    let res =
        app.http.get(format!("{}/api/search", app.base)).query(&params).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(res.status(), 200, "{params:?}");
    let body = res.bytes().await.unwrap();
    !body.starts_with(b"{\"data\":[]")
}

fn row(query: &str, scope: &str, mut http: Stats, sql: Option<Stats>) {
    let baseline = sql.map_or_else(
        || "— | — | —".to_owned(),
        |mut s| format!("{:.2} | {:.2} | {:.0}", s.pct(0.50), s.pct(0.99), s.rate()),
    );
    println!("| {query} | {scope} | {:.2} | {:.2} | {:.0} | {baseline} |", http.pct(0.50), http.pct(0.99), http.rate());
}

/// The same questions as `ILIKE '%…%'` over the same conversations, newest first, one page.
struct Baseline {
    connections: Vec<tokio::sync::Mutex<AsyncPgConnection>>,
}

#[derive(diesel::QueryableByName)]
#[allow(dead_code)]
struct Found {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    content: String,
}

impl Baseline {
    async fn connect(url: &str) -> Self {
        let mut connections = Vec::new();
        for _ in 0..CLIENTS {
            connections.push(tokio::sync::Mutex::new(AsyncPgConnection::establish(url).await.unwrap()));
        }
        Self { connections }
    }

    /// Whether it found something.
    async fn ilike(&self, client: usize, scope: Vec<String>, text: String) -> bool {
        let scope: Vec<Uuid> = scope.iter().map(|id| id.parse::<ulid::Ulid>().unwrap().into()).collect();
        let mut conn = self.connections[client].lock().await;
        let found: Vec<Found> = diesel::sql_query(
            "SELECT id, content FROM messages WHERE conversation_id = ANY($1) AND deleted_at IS NULL \
             AND content ILIKE '%' || $2 || '%' ORDER BY id DESC LIMIT 20",
        )
        .bind::<Array<SqlUuid>, _>(scope)
        .bind::<Text, _>(text)
        .load(&mut *conn)
        .await
        .unwrap();
        !found.is_empty()
    }
}

/// Accounts and channels over HTTP, messages and threads by `COPY`; prints the seeding time
/// and the sizes.
async fn seed(app: &TestApp, zipf: &Zipf<'_>) -> Corpus {
    let started = Instant::now();
    let auditor = app.register("Auditor").await;
    let mut people = Vec::new();
    for i in 0..WORKSPACES * PEOPLE_PER_WORKSPACE {
        people.push(app.register(&format!("Person{i}")).await);
    }
    let mut channels = Vec::new();
    for team in people.chunks(PEOPLE_PER_WORKSPACE) {
        let mut members: Vec<&TestUser> = team[1..].iter().collect();
        members.push(&auditor);
        let ws = app.workspace(&team[0], &members).await;
        let mut ids = Vec::new();
        for _ in 0..CHANNELS_PER_WORKSPACE / CLIENTS + 1 {
            let batch =
                (0..CLIENTS.min(CHANNELS_PER_WORKSPACE - ids.len())).map(|_| app.channel(&team[0], &ws, &members));
            ids.extend(futures_util::future::join_all(batch).await);
        }
        channels.push(ids);
    }
    println!(
        "\nsearch: {} accounts and {} channels over HTTP in {:.1?}",
        people.len() + 1,
        channels.concat().len(),
        started.elapsed()
    );

    let started = Instant::now();
    let mut rng = Rng(0x5EED_0F5E_A2C4);
    let mut document_frequency = vec![0u32; zipf.words.len()];
    let mut seen_in = vec![usize::MAX; zipf.words.len()];
    let mut phrases = vec![Vec::new(); WORKSPACES];
    let start_ms = (OffsetDateTime::now_utc().unix_timestamp() - 365 * 86_400) as u64 * 1000;
    let spacing_ms = 365 * 86_400 * 1000 / (THREADS_PER_CHANNEL * MESSAGES_PER_THREAD) as u64;
    // Two writers (the trigger's work is most of the cost, and there are two cores), each with
    // every other conversation, so a root is always in before its replies. Each writes in time
    // order, so the table's pages interleave conversations as a live server's do.
    let mut messages: [Vec<(Uuid, String)>; 2] = [Vec::new(), Vec::new()];
    let mut threads = [String::new(), String::new()];
    let mut message_number = 0usize;
    for (w, ids) in channels.iter().enumerate() {
        let team = &people[w * PEOPLE_PER_WORKSPACE..(w + 1) * PEOPLE_PER_WORKSPACE];
        for (c, conversation) in ids.iter().enumerate() {
            let writer = c % 2;
            let conversation: Uuid = conversation.parse::<ulid::Ulid>().unwrap().into();
            let mut seq = 0u64;
            for _ in 0..THREADS_PER_CHANNEL {
                let mut root = Uuid::nil();
                let mut participants: Vec<Uuid> = Vec::new();
                let (mut at, mut root_at) = (String::new(), String::new());
                for reply in 0..MESSAGES_PER_THREAD {
                    seq += 1;
                    let ms = start_ms + seq * spacing_ms + c as u64 * 1_000;
                    let id: Uuid = ulid::Ulid::from_parts(ms, u128::from(rng.next())).into();
                    let author: Uuid = team[rng.below(team.len())].id.parse::<ulid::Ulid>().unwrap().into();
                    if !participants.contains(&author) {
                        participants.push(author);
                    }
                    at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .unwrap()
                        .format(&Rfc3339)
                        .unwrap();
                    let content = sentence(zipf, &mut rng, message_number, &mut document_frequency, &mut seen_in);
                    message_number += 1;
                    if rng.below(50) == 0 && phrases[w].len() < 32 {
                        let words: Vec<&str> = content.split(' ').collect();
                        let from = rng.below(words.len() - 2);
                        phrases[w].push(words[from..from + 3].join(" "));
                    }
                    let line = if reply == 0 {
                        root = id;
                        root_at.clone_from(&at);
                        format!(
                            "{id}\t{conversation}\t{id}\t\\N\t0\t{{{id}}}\t{seq}\t{author}\tuser\t{content}\tcomplete\t{at}\n"
                        )
                    } else {
                        format!(
                            "{id}\t{conversation}\t{root}\t{root}\t1\t{{{root},{id}}}\t{seq}\t{author}\tuser\t{content}\tcomplete\t{at}\n"
                        )
                    };
                    messages[writer].push((id, line));
                }
                let root_seq = seq + 1 - MESSAGES_PER_THREAD as u64;
                let participants: Vec<String> = participants.iter().map(Uuid::to_string).collect();
                let (replies, participants) = (MESSAGES_PER_THREAD - 1, participants.join(","));
                writeln!(
                    threads[writer],
                    "{root}\t{conversation}\t{replies}\t{{{participants}}}\t{root_seq}\t{root_at}\t{at}"
                )
                .unwrap();
            }
        }
    }
    let batches = messages.map(|mut lines| {
        lines.sort_unstable_by_key(|(id, _)| *id);
        lines
            .chunks(20_000)
            .map(|chunk| chunk.iter().map(|(_, line)| line.as_str()).collect::<String>())
            .collect::<Vec<_>>()
    });
    let generated = started.elapsed();

    let started = Instant::now();
    let writers = batches.into_iter().zip(threads).map(|(batches, threads)| copy(&app.db_url, batches, threads));
    futures_util::future::join_all(writers).await;
    let copied = started.elapsed();

    let started = Instant::now();
    let mut conn = app.db().await;
    for sql in [
        "UPDATE conversations SET last_seq = (SELECT max(seq) FROM messages m WHERE m.conversation_id = conversations.id)",
        "ANALYZE messages",
        "ANALYZE threads",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    let analysed = started.elapsed();
    println!(
        "search: {message_number} messages generated in {generated:.1?}; COPY with the search trigger on 2 connections {copied:.1?} \
         ({:.0} messages/s); ANALYZE {analysed:.1?}",
        message_number as f64 / copied.as_secs_f64()
    );
    let (table, index) = (mebibytes(&mut conn, "messages").await, mebibytes(&mut conn, "messages_search_idx").await);
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        shared_buffers: String,
    }
    let setting: Setting = diesel::sql_query("SHOW shared_buffers").get_result(&mut conn).await.unwrap();
    println!(
        "search: messages heap {table:.0} MiB, GIN index messages_search_idx {index:.0} MiB; PostgreSQL shared_buffers {}",
        setting.shared_buffers
    );
    Corpus { people, auditor, channels, phrases, document_frequency }
}

async fn mebibytes(conn: &mut AsyncPgConnection, relation: &str) -> f64 {
    let row: Count = diesel::sql_query("SELECT pg_relation_size($1::regclass) AS n")
        .bind::<Text, _>(relation)
        .get_result(conn)
        .await
        .unwrap();
    row.n as f64 / f64::from(1 << 20)
}

/// A message of 4 to 27 words; one in ten also names the product.
fn sentence(zipf: &Zipf<'_>, rng: &mut Rng, number: usize, frequency: &mut [u32], seen_in: &mut [usize]) -> String {
    let length = 4 + rng.below(24);
    let mut words = Vec::with_capacity(length + 1);
    for _ in 0..length {
        let rank = zipf.draw(rng);
        if seen_in[rank] != number {
            seen_in[rank] = number;
            frequency[rank] += 1;
        }
        words.push(zipf.words[rank]);
    }
    if rng.below(10) == 0 {
        let at = rng.below(words.len());
        words.insert(at, COMMON);
    }
    words.join(" ")
}

/// `COPY`s the batches of messages, then the threads (they reference their roots).
async fn copy(url: &str, messages: Vec<String>, threads: String) {
    const MESSAGES: &str = "COPY messages (id, conversation_id, root_id, parent_id, depth, path, seq, author_id, \
                            role, content, status, created_at) FROM STDIN";
    const THREADS: &str = "COPY threads (root_id, conversation_id, reply_count, participant_ids, root_seq, \
                           created_at, last_activity_at) FROM STDIN";
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    for (statement, rows) in messages.into_iter().map(|batch| (MESSAGES, batch)).chain([(THREADS, threads)]) {
        let mut sink = std::pin::pin!(client.copy_in::<_, bytes::Bytes>(statement).await.unwrap());
        sink.send(bytes::Bytes::from(rows)).await.unwrap();
        sink.as_mut().finish().await.unwrap();
    }
}
