//! `cargo xtask modules`: the module-import check for `skein-infra`.
//!
//! Reads every source file of the crate, finds the modules each one refers to (`crate::…`
//! and `super::…` paths, in `use` trees and inline), and fails when
//! - the files refer to each other in a circle (any strongly connected component of more
//!   than one file), or
//! - a file of a lower floor refers to a higher one. The floors, bottom up: `store`
//!   (persistence) and the leaf modules, then `realtime`, then `answers`. A module that is
//!   in no floor's folder counts as the bottom floor.
//!
//! A module is a file: `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is `a::b`. A reference
//! counts against the longest module prefix of its path, so `crate::store::pool::PgPool`
//! is an edge to `store/pool.rs` and `crate::store::PgPool` one to `store/mod.rs`.
//! Test modules (`#[cfg(test)]` to the end of a file) are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Floors, bottom first: a module may refer to its own floor and the ones below.
const FLOORS: [&str; 3] = ["store", "realtime", "answers"];

pub fn check(root: &Path) -> Result<(), String> {
    let src = root.join("crates/infra/src");
    let files = modules(&src)?;
    let names: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &files {
        let targets = edges.entry(module.clone()).or_default();
        for path in references(module, text, &names) {
            if let Some(target) = (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| names.contains(p))
                && &target != module
            {
                targets.insert(target);
            }
        }
    }
    let mut problems = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            if floor(to) > floor(from) {
                problems.push(format!("{} (floor {}) refers up to {}", show(from), FLOORS[floor(from)], show(to)));
            }
        }
    }
    for circle in circles(&edges) {
        let shown: Vec<String> = circle.iter().map(|m| show(m)).collect();
        problems.push(format!("import circle of {} files: {}", shown.len(), shown.join(", ")));
    }
    if problems.is_empty() {
        let count: usize = edges.values().map(BTreeSet::len).sum();
        println!("skein-infra: {} modules, {count} imports, no circle, nothing refers up a floor", files.len());
        Ok(())
    } else {
        Err(format!("skein-infra module imports:\n  {}", problems.join("\n  ")))
    }
}

fn show(module: &[String]) -> String {
    if module.is_empty() { "lib.rs".to_owned() } else { module.join("::") }
}

fn floor(module: &[String]) -> usize {
    module.first().and_then(|top| FLOORS.iter().position(|f| f == top)).unwrap_or(0)
}

/// Every module of the crate with its source (test modules cut off).
fn modules(src: &Path) -> Result<BTreeMap<Vec<String>, String>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).map_err(|e| e.to_string())?;
            let mut module: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let file = module.pop().unwrap_or_default();
            match file.as_str() {
                "lib.rs" | "mod.rs" => {}
                other => module.push(other.trim_end_matches(".rs").to_owned()),
            }
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let text = match test_module(&text) {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            out.insert(module, text);
        }
    }
    Ok(out)
}

/// Where the file's test module starts (`#[cfg(test)]`, maybe more attributes, then `mod`),
/// by convention last in the file.
fn test_module(text: &str) -> Option<usize> {
    text.match_indices("#[cfg(test)]").map(|(at, _)| at).find(|at| {
        let mut rest = text[at + "#[cfg(test)]".len()..].trim_start();
        while rest.starts_with("#[") {
            rest = rest.find(']').map_or("", |end| rest[end + 1..].trim_start());
        }
        rest.starts_with("mod ")
    })
}

/// The absolute module paths `text` (the source of `module`) refers to: `crate::…`,
/// `super::…`, and paths that start with one of the module's own child modules
/// (`use flusher::FlushQueue;` in `answers/mod.rs`).
fn references(module: &[String], text: &str, names: &BTreeSet<Vec<String>>) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let preceded_by_ident =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        let base = if preceded_by_ident {
            None
        } else if rest.starts_with("crate::") {
            i += "crate::".len();
            Some(Vec::new())
        } else if rest.starts_with("super::") {
            let mut parent = module.to_vec();
            while code[i..].starts_with("super::") {
                parent.pop();
                i += "super::".len();
            }
            Some(parent)
        } else {
            child_path(module, rest, names)
        };
        match base {
            Some(base) => i = use_tree(&code, i, base, &mut out),
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// `rest` starts with `child::` where `child` is a module below `module`: the base to read
/// the rest of the path from (the child's name is read as its first segment).
fn child_path(module: &[String], rest: &str, names: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if ident.is_empty() || !rest[ident.len()..].starts_with("::") {
        return None;
    }
    let mut child = module.to_vec();
    child.push(ident);
    names.contains(&child).then(|| module.to_vec())
}

/// Reads a path or `use` tree at `at` below `base`; pushes the full paths; returns where it ends.
fn use_tree(code: &str, mut at: usize, mut base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            // `{a, b::c, self}`: each item is a tree of its own below `base`.
            at += 1;
            let _ = group;
            loop {
                let skipped = code[at..].len() - code[at..].trim_start_matches([' ', '\n', '\r', '\t', ',']).len();
                at += skipped;
                if code[at..].starts_with('}') || at >= code.len() {
                    return at + 1;
                }
                let before = at;
                at = use_tree(code, at, base.clone(), out);
                if at == before {
                    at += 1;
                }
            }
        }
        let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            out.push(base);
            return at;
        }
        at += ident.len();
        if ident != "self" {
            base.push(ident);
        }
        // `x as y`: the alias names nothing new.
        if let Some(alias) = code[at..].strip_prefix(" as ") {
            let alias_len: usize =
                alias.chars().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum();
            at += " as ".len() + alias_len;
        }
        if code[at..].starts_with("::") {
            at += 2;
        } else {
            out.push(base);
            return at;
        }
    }
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(module: &[&str], text: &str) -> Vec<String> {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        let names = BTreeSet::from([vec!["answers".to_owned(), "flusher".to_owned()]]);
        references(&module, text, &names).iter().map(|p| p.join("::")).collect()
    }

    #[test]
    fn child_paths_and_aliases_are_read() {
        let text =
            "use flusher::FlushQueue;\nuse crate::store::answers::{self as store, Finish};\nfn f() { other::x(); }";
        assert_eq!(
            paths(&["answers"], text),
            ["answers::flusher::FlushQueue", "store::answers", "store::answers::Finish"]
        );
    }

    #[test]
    fn use_trees_and_inline_paths_are_read() {
        let text = "use crate::store::{pool::PgPool, self, rows::{A, B}};\nuse super::hub::Ephemeral; // crate::nope\n\
                    fn f() { crate::db::SetupError::Start(x); let s = super::super::clock::now(); }";
        assert_eq!(
            paths(&["events", "bus"], text),
            [
                "store::pool::PgPool",
                "store",
                "store::rows::A",
                "store::rows::B",
                "events::hub::Ephemeral",
                "db::SetupError::Start",
                "clock::now"
            ]
        );
    }

    #[test]
    fn circles_are_found() {
        let m = |s: &str| vec![s.to_owned()];
        let mut edges = BTreeMap::new();
        edges.insert(m("a"), BTreeSet::from([m("b")]));
        edges.insert(m("b"), BTreeSet::from([m("c")]));
        edges.insert(m("c"), BTreeSet::from([m("a")]));
        edges.insert(m("d"), BTreeSet::from([m("a")]));
        assert_eq!(circles(&edges), vec![vec![m("a"), m("b"), m("c")]]);
    }
}
