//! Property test: random trees built over HTTP come back in depth-first order (siblings
//! oldest first) with the right depths, parents, ancestry and counts, across pages and for
//! subtrees.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use skein_shared::thread::ThreadTreeResponse;
use skein_tests::{TestApp, TestUser};

/// A random tree: node `i > 0` hangs under `parents[i - 1]`, an earlier node.
#[derive(Debug, Clone)]
struct Shape {
    parents: Vec<usize>,
    page: u32,
    subtree_at: usize,
}

fn shapes() -> impl Strategy<Value = Shape> {
    (0usize..45, 1u32..9, any::<prop::sample::Index>()).prop_flat_map(|(n, page, at)| {
        let parents: Vec<BoxedStrategy<usize>> = (1..=n).map(|i| (0..i).boxed()).collect();
        (parents, Just(page), Just(at)).prop_map(move |(parents, page, at)| Shape {
            subtree_at: at.index(parents.len() + 1),
            parents,
            page,
        })
    })
}

/// Depth-first order of the model, siblings in creation order.
fn preorder(children: &HashMap<usize, Vec<usize>>, from: usize, out: &mut Vec<usize>) {
    out.push(from);
    for &child in children.get(&from).into_iter().flatten() {
        preorder(children, child, out);
    }
}

async fn fetch_all(
    app: &TestApp,
    user: &TestUser,
    root: &str,
    from: Option<&str>,
    page: u32,
) -> Result<Vec<ThreadTreeResponse>, TestCaseError> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let from = from.map(|f| format!("&from={f}")).unwrap_or_default();
        let res = app.get(&format!("/api/threads/{root}/tree?limit={page}{from}{cursor}"), user).await;
        prop_assert_eq!(res.status, 200);
        let parsed: ThreadTreeResponse =
            serde_json::from_value(res.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(parsed.data.len() <= page as usize);
        let next = parsed.page.next.clone();
        pages.push(parsed);
        match next {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    Ok(pages)
}

async fn check(app: &TestApp, user: &TestUser, conversation: &str, shape: &Shape) -> Result<(), TestCaseError> {
    // Build the tree; node 0 is the root.
    let mut ids = vec![app.root(user, conversation, "n0").await];
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &parent) in shape.parents.iter().enumerate() {
        let node = i + 1;
        ids.push(app.reply(user, &ids[parent], &format!("n{node}")).await);
        children.entry(parent).or_default().push(node);
    }
    let parent_of: HashMap<usize, usize> = shape.parents.iter().enumerate().map(|(i, &p)| (i + 1, p)).collect();
    let ancestry = |mut node: usize| {
        let mut path = Vec::new();
        while let Some(&p) = parent_of.get(&node) {
            path.push(ids[p].clone());
            node = p;
        }
        path.reverse();
        path
    };

    for from in [None, Some(shape.subtree_at)] {
        let mut expected = Vec::new();
        preorder(&children, from.unwrap_or(0), &mut expected);
        let pages = fetch_all(app, user, &ids[0], from.map(|f| ids[f].as_str()), shape.page).await?;
        let nodes: Vec<_> = pages.iter().flat_map(|p| p.data.iter()).collect();
        let got: Vec<String> = nodes.iter().map(|n| n.message.id.to_string()).collect();
        let want: Vec<String> = expected.iter().map(|&i| ids[i].clone()).collect();
        prop_assert_eq!(got, want);
        // Ancestry as a client rebuilds it from each page: spelled out, or the parent's + parent
        // (the parent being earlier in the same page).
        let mut rebuilt: HashMap<String, Vec<String>> = HashMap::new();
        for page in &pages {
            prop_assert!(
                page.data.first().is_none_or(|n| n.ancestor_ids.is_some()),
                "a page's first node has its ancestry"
            );
            let mut in_page: HashMap<String, Vec<String>> = HashMap::new();
            for node in &page.data {
                let ancestors = match (&node.ancestor_ids, node.message.parent_id) {
                    (Some(ids), _) => ids.iter().map(ToString::to_string).collect(),
                    (None, Some(parent)) => {
                        let parent = parent.to_string();
                        let mut a = in_page
                            .get(&parent)
                            .cloned()
                            .ok_or_else(|| TestCaseError::fail("ancestry omitted but parent not in page"))?;
                        a.push(parent);
                        a
                    }
                    (None, None) => return Err(TestCaseError::fail("a root without ancestry")),
                };
                in_page.insert(node.message.id.to_string(), ancestors.clone());
                rebuilt.insert(node.message.id.to_string(), ancestors);
            }
        }
        for (node, &index) in nodes.iter().zip(&expected) {
            let ancestors = rebuilt[&node.message.id.to_string()].clone();
            prop_assert_eq!(&ancestors, &ancestry(index));
            prop_assert_eq!(node.message.depth as usize, ancestors.len());
            prop_assert_eq!(
                node.message.parent_id.map(|p| p.to_string()),
                parent_of.get(&index).map(|&p| ids[p].clone())
            );
            prop_assert_eq!(node.message.root_id.to_string(), ids[0].clone());
        }
        let thread = &pages[0].thread;
        prop_assert_eq!(thread.reply_count as usize, shape.parents.len());
        prop_assert_eq!(thread.root.id.to_string(), ids[0].clone());
    }
    Ok(())
}

#[test]
fn random_trees_come_back_depth_first() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (app, user, conversation) = rt.block_on(async {
        let app = TestApp::spawn().await;
        let user = app.register("Ann").await;
        let ws = app.workspace(&user, &[]).await;
        let conversation = app.channel(&user, &ws, &[]).await;
        (app, user, conversation)
    });
    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    let result = runner.run(&shapes(), |shape| rt.block_on(check(&app, &user, &conversation, &shape)));
    rt.block_on(async move { drop(app) });
    if let Err(e) = result {
        panic!("{e}");
    }
}
