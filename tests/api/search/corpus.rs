//! A corpus of a few hundred messages in several languages and scripts, edited, deleted,
//! tagged, reacted to and pinned, searched with every syntax and filter; each result is
//! compared with the hits a model of the corpus expects.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use skein_tests::{TestApp, TestUser};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::all_hits;

/// Words by meaning: the forms of one class are one word to search (stemming in English,
/// case, accents and `ß` folded in any language). No form of one class is the prefix of
/// another's, and every English stem is a prefix of its forms.
const CLASSES: &[&[&str]] = &[
    &["deploy", "deploys", "deployed", "deploying"],
    &["pipeline", "pipelines"],
    &["kubernetes", "Kubernetes"],
    &["café", "Café", "CAFE", "cafe"],
    &["Müller", "muller", "MÜLLER"],
    &["Straße", "strasse", "STRASSE"],
    &["привет", "Привет", "ПРИВЕТ"],
    &["καλημέρα", "ΚΑΛΗΜΕΡΑ", "καλημερα"],
    &["東京"],
    &["database", "databases"],
    &["rollback", "rollbacks"],
    &["incident", "incidents"],
];
const DEPLOY: usize = 0;
const PIPELINE: usize = 1;
const KUBERNETES: usize = 2;
const ROLLBACK: usize = 10;

/// Deterministic pseudo-random numbers (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Lower case, accents and `ß` folded: what the index does to the corpus's words.
fn fold(word: &str) -> String {
    word.to_lowercase()
        .chars()
        .map(|c| match c {
            'é' => "e".to_owned(),
            'ü' => "u".to_owned(),
            'ß' => "ss".to_owned(),
            'έ' => "ε".to_owned(),
            'ή' => "η".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[derive(Clone)]
struct Doc {
    conversation: usize,
    root: String,
    author: usize,
    /// (class, form) per word, in order.
    words: Vec<(usize, usize)>,
    deleted: bool,
    created_at: OffsetDateTime,
    tagged: bool,
    reacted: bool,
    pinned: bool,
}

impl Doc {
    fn has(&self, class: usize) -> bool {
        self.words.iter().any(|(c, _)| *c == class)
    }
    fn has_phrase(&self, first: usize, second: usize) -> bool {
        self.words.windows(2).any(|w| w[0].0 == first && w[1].0 == second)
    }
    fn has_prefix(&self, prefix: &str) -> bool {
        self.words.iter().any(|(c, f)| fold(CLASSES[*c][*f]).starts_with(prefix))
    }
}

fn random_words(rng: &mut Rng) -> Vec<(usize, usize)> {
    (0..3 + rng.below(4))
        .map(|_| {
            let class = rng.below(CLASSES.len());
            (class, rng.below(CLASSES[class].len()))
        })
        .collect()
}

fn text(words: &[(usize, usize)], rng: &mut Rng) -> String {
    let mut out = String::new();
    for (i, (c, f)) in words.iter().enumerate() {
        if i > 0 {
            out.push_str([" ", ", ", " — ", "\n"][rng.below(4)]);
        }
        out.push_str(CLASSES[*c][*f]);
    }
    out
}

struct Corpus {
    app: TestApp,
    users: Vec<TestUser>,
    workspaces: Vec<String>,
    conversations: Vec<String>,
    docs: HashMap<String, Doc>,
}

impl Corpus {
    /// The ids the model expects for `wanted`, as a set.
    fn expect(&self, wanted: impl Fn(&Doc) -> bool) -> BTreeSet<String> {
        self.docs.iter().filter(|(_, d)| !d.deleted && wanted(d)).map(|(id, _)| id.clone()).collect()
    }

    /// Runs the search in both orders over pages of 7 and checks it against the model: each
    /// hit once, newest first when asked.
    async fn check(&self, params: &[(&str, &str)], wanted: impl Fn(&Doc) -> bool) {
        let expected = self.expect(wanted);
        for sort in ["relevance", "newest"] {
            let mut p = params.to_vec();
            p.push(("sort", sort));
            let hits = all_hits(&self.app, &self.users[0], &p, 7).await;
            let found: BTreeSet<String> = hits.iter().cloned().collect();
            assert_eq!(found.len(), hits.len(), "{params:?} {sort}: a hit repeats");
            assert_eq!(found, expected, "{params:?} {sort}");
            if sort == "newest" {
                let mut ordered = hits.clone();
                ordered.sort_by(|a, b| b.cmp(a));
                assert_eq!(hits, ordered, "{params:?}: newest first");
            }
        }
    }
}

async fn build() -> Corpus {
    let app = TestApp::spawn().await;
    let users = vec![app.register("Ann").await, app.register("Bob").await];
    let first = app.workspace(&users[0], &[&users[1]]).await;
    let second = app.workspace(&users[0], &[&users[1]]).await;
    let conversations = vec![
        app.channel(&users[0], &first, &[&users[1]]).await,
        app.channel(&users[0], &first, &[&users[1]]).await,
        app.channel(&users[0], &second, &[&users[1]]).await,
    ];
    let mut rng = Rng(0x5eed_cafe);
    let mut docs: HashMap<String, Doc> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for i in 0..300 {
        let (conversation, author) = (rng.below(3), rng.below(2));
        let words = random_words(&mut rng);
        let content = text(&words, &mut rng);
        let roots: Vec<&String> = order.iter().filter(|id| docs[*id].conversation == conversation).collect();
        let body = if i % 3 == 0 || roots.is_empty() {
            app.post(
                &format!("/api/threads/{}/root", conversations[conversation]),
                &users[author],
                json!({ "content": content }),
            )
            .await
            .expect(201)
            .body
        } else {
            let parent = roots[rng.below(roots.len())].clone();
            app.post(&format!("/api/messages/{parent}/reply"), &users[author], json!({ "content": content }))
                .await
                .expect(201)
                .body
        };
        let id = body["id"].as_str().unwrap().to_owned();
        let doc = Doc {
            conversation,
            root: body["root_id"].as_str().unwrap().to_owned(),
            author,
            words,
            deleted: false,
            created_at: OffsetDateTime::parse(body["created_at"].as_str().unwrap(), &Rfc3339).unwrap(),
            tagged: false,
            reacted: false,
            pinned: false,
        };
        docs.insert(id.clone(), doc);
        order.push(id);
    }
    // Edits (each author edits their own), deletes, tags, reactions and pins.
    for n in 0..40 {
        let id = order[rng.below(order.len())].clone();
        let doc = docs.get_mut(&id).unwrap();
        let words = random_words(&mut rng);
        let user = &users[doc.author];
        if n % 4 == 0 {
            app.delete(&format!("/api/messages/{id}"), user).await.expect(200);
            doc.deleted = true;
        } else if !doc.deleted {
            app.patch(&format!("/api/messages/{id}"), user, json!({ "content": text(&words, &mut rng) }))
                .await
                .expect(200);
            doc.words = words;
        }
    }
    let roots: BTreeSet<String> = docs.values().map(|d| d.root.clone()).collect();
    for root in roots.iter().step_by(3) {
        app.patch(&format!("/api/threads/{root}"), &users[0], json!({ "tags": ["ops", "weekly"] })).await.expect(200);
        for doc in docs.values_mut().filter(|d| &d.root == root) {
            doc.tagged = true;
        }
    }
    for id in order.iter().step_by(9) {
        if docs[id].deleted {
            continue;
        }
        app.put(&format!("/api/messages/{id}/reactions/%F0%9F%91%8D"), &users[1], json!({})).await.expect(200);
        docs.get_mut(id).unwrap().reacted = true;
    }
    for id in order.iter().skip(4).step_by(13) {
        if docs[id].deleted {
            continue;
        }
        app.put(&format!("/api/messages/{id}/pin"), &users[0], json!({})).await.expect(200);
        docs.get_mut(id).unwrap().pinned = true;
    }
    Corpus { app, users, workspaces: vec![first, second], conversations, docs }
}

#[tokio::test]
async fn every_syntax_and_filter_finds_what_the_model_expects() {
    let c = build().await;
    let mut rng = Rng(7);

    // One word of each class, written in any of its forms: stems, case and accents fold.
    for (class, forms) in CLASSES.iter().enumerate() {
        let q = format!("{} ", forms[rng.below(forms.len())]);
        c.check(&[("q", &q)], |d| d.has(class)).await;
    }
    c.check(&[("q", "DEPLOYING pipelines ")], |d| d.has(DEPLOY) && d.has(PIPELINE)).await;
    c.check(&[("q", "\"deploy pipeline\"")], |d| d.has_phrase(DEPLOY, PIPELINE)).await;
    c.check(&[("q", "deploy -pipeline ")], |d| d.has(DEPLOY) && !d.has(PIPELINE)).await;
    c.check(&[("q", "kubernetes or rollback ")], |d| d.has(KUBERNETES) || d.has(ROLLBACK)).await;
    c.check(&[("q", "Straße Müller ")], |d| d.has(5) && d.has(4)).await;
    // The last word is being typed: a prefix of any form (as written, folded).
    for prefix in ["pipel", "deplo", "kuber", "прив", "caf", "STRA", "καλ"] {
        let folded = fold(prefix);
        c.check(&[("q", prefix)], |d| d.has_prefix(&folded)).await;
    }
    // A whole word as the last one is its stem as a prefix: the singular too.
    c.check(&[("q", "rollbacks")], |d| d.has(ROLLBACK)).await;
    c.check(&[("q", "incident deplo")], |d| d.has(11) && d.has_prefix("deplo")).await;

    // Filters, each with a word present everywhere often enough to matter.
    let q = [("q", "deploy or database or café ")];
    let any = |d: &Doc| d.has(DEPLOY) || d.has(9) || d.has(3);
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut p: Vec<(&str, String)> = q.iter().map(|(k, v)| (*k, v.to_string())).collect();
        p.extend(extra.iter().cloned());
        p
    };
    let run = async |params: Vec<(&'static str, String)>, wanted: &dyn Fn(&Doc) -> bool| {
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        c.check(&borrowed, wanted).await;
    };
    run(with(&[]), &any).await;
    run(with(&[("conversation_id", c.conversations[1].clone())]), &|d| any(d) && d.conversation == 1).await;
    run(with(&[("workspace_id", c.workspaces[1].clone())]), &|d| any(d) && d.conversation == 2).await;
    let root = c.docs.values().find(|d| d.conversation == 0 && !d.deleted).unwrap().root.clone();
    run(with(&[("root_id", root.clone())]), &|d| any(d) && d.root == root).await;
    run(with(&[("author_id", c.users[1].id.clone())]), &|d| any(d) && d.author == 1).await;
    run(with(&[("role", "user".into())]), &any).await;
    run(with(&[("role", "assistant".into())]), &|_| false).await;
    let mut times: Vec<OffsetDateTime> = c.docs.values().map(|d| d.created_at).collect();
    times.sort();
    let (from, to) = (times[100], times[200]);
    let window = [("from", from.format(&Rfc3339).unwrap()), ("to", to.format(&Rfc3339).unwrap())];
    run(with(&window), &|d| any(d) && d.created_at >= from && d.created_at < to).await;
    run(with(&[("tags", "weekly, ops".into())]), &|d| any(d) && d.tagged).await;
    run(with(&[("tags", "ops,missing".into())]), &|_| false).await;
    run(with(&[("has", "reactions".into())]), &|d| any(d) && d.reacted).await;
    run(with(&[("has", "pins".into())]), &|d| any(d) && d.pinned).await;
    run(with(&[("has", "reactions,pins".into())]), &|d| any(d) && d.reacted && d.pinned).await;
    run(with(&[("has", "attachments".into())]), &|_| false).await;
    // A conversation outside the given workspace: nothing, not an error.
    let crossed = [("conversation_id", c.conversations[2].clone()), ("workspace_id", c.workspaces[0].clone())];
    run(with(&crossed), &|_| false).await;
}
