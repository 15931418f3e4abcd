//! The wire contract in `docs/` is kept true to the code: the AsyncAPI
//! document passes the reference AsyncAPI parser and names exactly the
//! message kinds of the schema, and `docs/protocol.md` names every message
//! kind, error code and close code the server has.
//!
//! The parser is the npm package `@asyncapi/parser`, locked in
//! `docs/package-lock.json`; the test runs `npm ci` in `docs/` when it is not
//! installed yet, and fails (never skips) when `node`/`npm` are missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The field names of `oneof kind { ... }` inside `message NAME { ... }`.
fn oneof_kinds(proto: &str, message: &str) -> Vec<String> {
    let start = proto
        .find(&format!("message {message} {{"))
        .unwrap_or_else(|| panic!("message {message} not in the schema"));
    let body = &proto[start..];
    let oneof = &body[body.find("oneof kind {").expect("a oneof kind")..];
    let block = &oneof[..oneof.find('}').expect("end of oneof")];
    block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Makes sure `docs/node_modules` holds the parser, installing it with
/// `npm ci` (from the lock file) when it does not.
fn asyncapi_parser_installed(docs: &Path) {
    if docs
        .join("node_modules/@asyncapi/parser/package.json")
        .exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(docs)
        .status()
        .unwrap_or_else(|e| {
            panic!("`npm` is needed to install the AsyncAPI parser ({e}): install Node.js 20+ and run `npm ci` in docs/")
        });
    assert!(status.success(), "`npm ci` in docs/ failed: {status}");
}

#[test]
fn asyncapi_document_passes_the_asyncapi_parser_and_names_every_message_kind() {
    let docs = root().join("docs");
    asyncapi_parser_installed(&docs);
    let out = Command::new("node")
        .args(["validate-asyncapi.mjs", "asyncapi.yaml"])
        .current_dir(&docs)
        .output()
        .unwrap_or_else(|e| panic!("`node` is needed to validate docs/asyncapi.yaml: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docs/asyncapi.yaml is not valid AsyncAPI:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VALID asyncapi 3."), "{stdout}");
    let listed: BTreeSet<String> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGES "))
        .expect("the validator lists the messages")
        .split(',')
        .map(str::to_string)
        .collect();
    let proto = read("proto/tickwire/v1/tickwire.proto");
    let kinds: BTreeSet<String> = oneof_kinds(&proto, "ServerMessage")
        .into_iter()
        .chain(oneof_kinds(&proto, "ClientMessage"))
        .map(|k| camel(&k))
        .collect();
    assert_eq!(
        listed, kinds,
        "asyncapi.yaml messages vs the schema's kinds"
    );
}

#[test]
fn protocol_md_names_every_message_kind_error_code_and_close_code() {
    let doc = read("docs/protocol.md");
    let proto = read("proto/tickwire/v1/tickwire.proto");
    for message in ["ServerMessage", "ClientMessage"] {
        for kind in oneof_kinds(&proto, message) {
            assert!(
                doc.contains(&format!("`{kind}`")),
                "docs/protocol.md does not describe {message} kind `{kind}`"
            );
        }
    }
    for code in proto
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ERROR_CODE_"))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(doc.contains(code), "docs/protocol.md does not name {code}");
    }
    let close = read("src/protocol/close.rs");
    let codes: Vec<&str> = close
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": u16 ="))
        .filter_map(|l| l.split('=').nth(1))
        .map(|v| v.trim().trim_end_matches(';'))
        .collect();
    assert!(
        !codes.is_empty(),
        "close codes found in src/protocol/close.rs"
    );
    for code in codes {
        assert!(
            doc.contains(&format!("| {code} |")),
            "docs/protocol.md has no row for close code {code}"
        );
    }
}

#[test]
fn readme_docs_and_sources_cite_no_document_outside_the_repository() {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs"), root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "md" || e == "rs" || e == "yaml")
            {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable file");
        assert!(
            !text.contains("../shared/"),
            "{} cites ../shared/, which a clone does not have",
            file.display()
        );
    }
}

#[test]
fn protocol_md_checksum_example_is_what_the_server_computes() {
    use tickwire::protocol::pb::Level;
    let asks = [Level {
        price: 100.5,
        quantity: 1.25,
    }];
    let bids = [Level {
        price: 100.25,
        quantity: 0.5,
    }];
    let crc = tickwire::feed::book::checksum(asks.iter(), bids.iter(), 2, 3);
    let doc = read("docs/protocol.md");
    assert!(
        doc.contains(&format!("whose CRC32 is {crc}")),
        "docs/protocol.md section 8's example must state the server's checksum {crc}"
    );
}
