//! The import graph of `src/` points one way: every `use` of another top
//! module goes down the declared layer order, and the top modules form no
//! cycle. docs/architecture.md draws the same layers.
//!
//! The check reads the source text (no compiler plug-in): each
//! `crate::X`, `crate::{X, ..}`, `super::` chain and, in `src/main.rs`,
//! `tickwire::X` is resolved to the top module `X` it names. Comments are
//! skipped, so a doc comment may still mention a module above.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the bottom up. A module may use modules of lower layers
/// only; modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["protocol"],
    &["metrics"],
    &["feed"],
    &["analytics", "sources", "cluster"],
    &["server"],
    &["recording"],
    &["config"],
    &["cli"],
    &["app"],
    // the fuzz targets' entry points: reach into any layer, used by none
    &["fuzz"],
    &["main"],
];

/// The layer of a top module, `None` when it is not declared.
fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module path of a file under `src/` (`src/feed/hub.rs` is
/// `["feed", "hub"]`, `src/feed/mod.rs` is `["feed"]`, `src/lib.rs` is `[]`).
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The text without `//` comments and `/* */` blocks (string literals are
/// kept; none in `src/` spells a crate path).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Whether `text` has `word` at `at` as a whole path segment start.
fn starts_path(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
}

/// The top modules a source file refers to, each with a line of context.
fn references(rel: &str, text: &str) -> Vec<(String, String)> {
    let text = strip_comments(text);
    let here = module_path(rel);
    let mut found = Vec::new();
    let line_of = |at: usize| {
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        text[start..end].trim().to_string()
    };
    let roots: &[&str] = if rel == "src/main.rs" {
        &["crate::", "tickwire::"]
    } else {
        &["crate::"]
    };
    for root in roots {
        for (at, _) in text.match_indices(root) {
            if !starts_path(&text, at) {
                continue;
            }
            let after = &text[at + root.len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::c, d::{e}}`: the first segment of each item
                let mut depth = 0usize;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                            item_start = false;
                            let name = ident_at(&group[i..]);
                            if name != "self" {
                                found.push((name.to_string(), line_of(at)));
                            }
                        }
                        _ => {}
                    }
                }
            } else {
                let name = ident_at(after);
                if !name.is_empty() {
                    found.push((name.to_string(), line_of(at)));
                }
            }
        }
    }
    for (at, _) in text.match_indices("super::") {
        if !starts_path(&text, at) || text[..at].ends_with("super::") {
            continue;
        }
        // a file's own module is `here`; `super` is its parent
        let mut path = here.clone();
        let mut rest = &text[at..];
        while let Some(r) = rest.strip_prefix("super::") {
            path.pop();
            rest = r;
        }
        let top = match path.first() {
            Some(top) => top.clone(),
            None => ident_at(rest).to_string(),
        };
        if !top.is_empty() && top != "self" && top != "{" {
            found.push((top, line_of(at)));
        }
    }
    found
}

/// One import that breaks the order, as a sentence.
fn check(files: &[(String, String)]) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        // src/lib.rs only declares the modules
        let Some(from) = module_path(rel).first().cloned() else {
            continue;
        };
        let Some(from_rank) = rank(&from) else {
            problems.push(format!(
                "{rel}: top module `{from}` is in no layer of tests/layers.rs"
            ));
            continue;
        };
        for (to, line) in references(rel, text) {
            if to == from {
                continue;
            }
            let Some(to_rank) = rank(&to) else {
                // `crate::SomeType` re-exported at the root, or a macro path
                continue;
            };
            graph.entry(from.clone()).or_default().insert(to.clone());
            if to_rank >= from_rank {
                let how = if to_rank == from_rank {
                    "a module of its own layer"
                } else {
                    "a layer above it"
                };
                problems.push(format!("{rel}: `{from}` uses `{to}`, {how}: {line}"));
            }
        }
    }
    (problems, graph)
}

/// A cycle among the top modules, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut c = stack[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn source_tree() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .expect("under the manifest dir")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel, text)
        })
        .collect()
}

#[test]
fn every_use_in_src_points_down_the_layers() {
    let files = source_tree();
    assert!(files.len() > 50, "src/ read: {} files", files.len());
    let (problems, graph) = check(&files);
    assert!(
        problems.is_empty(),
        "imports against the layer order:\n{}",
        problems.join("\n")
    );
    // the graph is not empty: the checker saw the real imports
    assert!(graph.get("server").is_some_and(|s| s.contains("feed")));
    assert!(graph.get("feed").is_some_and(|s| s.contains("protocol")));
}

#[test]
fn the_top_modules_form_no_cycle() {
    let (_, graph) = check(&source_tree());
    assert_eq!(cycle(&graph), None, "import graph: {graph:#?}");
}

#[test]
fn every_top_module_of_src_is_in_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&root).expect("src/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let module = name.strip_suffix(".rs").unwrap_or(&name);
        if module == "lib" {
            continue;
        }
        assert!(rank(module).is_some(), "src/{name} is in no layer");
    }
}

fn fake(rel: &str, text: &str) -> Vec<(String, String)> {
    vec![(rel.to_string(), text.to_string())]
}

#[test]
fn the_checker_refuses_the_hub_using_analytics() {
    let (problems, _) = check(&fake(
        "src/feed/hub.rs",
        "use crate::protocol::Format;\nuse crate::analytics::tap::Tap;\n",
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("`feed` uses `analytics`"),
        "{problems:?}"
    );
    // a grouped use, a full path in code and a `super` chain count too
    for text in [
        "use crate::{protocol::Format, analytics::tap::Tap};",
        "fn f() { crate::analytics::engine::new(); }",
        "use super::super::super::server::Server;",
    ] {
        let (problems, _) = check(&fake("src/feed/hub/inner.rs", text));
        assert_eq!(problems.len(), 1, "{text}: {problems:?}");
    }
    // downward uses, uses inside the module and comments pass
    for text in [
        "use crate::metrics::Metrics; use super::channel::Channel;",
        "// see crate::analytics for the consumer\n/* crate::server */",
        "use crate::{feed::Hub, protocol::{Format, pb}};",
    ] {
        let (problems, _) = check(&fake("src/feed/hub.rs", text));
        assert!(problems.is_empty(), "{text}: {problems:?}");
    }
}

#[test]
fn the_checker_refuses_peers_and_finds_cycles() {
    let (problems, graph) = check(&[
        (
            "src/sources/sim.rs".to_string(),
            "use crate::analytics::candles::Candle;".to_string(),
        ),
        (
            "src/analytics/engine.rs".to_string(),
            "use crate::sources::Instrument;".to_string(),
        ),
    ]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("its own layer"), "{problems:?}");
    let c = cycle(&graph).expect("sources -> analytics -> sources is a cycle");
    assert_eq!(c.first(), c.last());
    let (_, graph) = check(&fake("src/server/mod.rs", "use crate::feed::Hub;"));
    assert_eq!(cycle(&graph), None);
    // `super` at a top-level file names the crate root's module
    let (problems, _) = check(&fake("src/config.rs", "use super::app::App;"));
    assert_eq!(problems.len(), 1, "{problems:?}");
}
