//! The JS client is a real npm package: in a fresh `npm init -y` project,
//! `npm install <clients/js> ws` and the README's Node example (which
//! imports `{ TickwireClient, OrderBook } from "tickwire"`) run as written
//! against a real server, and a CommonJS `require("tickwire")` works too.
//!
//! Needs `node`/`npm` (fails with the command to run when missing) and the
//! dev packages of `clients/js` (installed here with `npm ci` when missing).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::Server;

const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js");

fn npm(dir: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("`npm` is needed (install Node.js 20+): {e}"));
    assert!(status.success(), "npm {args:?} in {} failed", dir.display());
}

/// The first ```js block after the "## Node 20+" heading of the README.
fn readme_node_example() -> String {
    let readme = std::fs::read_to_string(format!("{JS_DIR}/README.md")).expect("README");
    let section = &readme[readme.find("## Node 20+").expect("a Node section")..];
    let start = section.find("```js\n").expect("a js block") + "```js\n".len();
    section[start..start + section[start..].find("```").expect("block end")].to_string()
}

/// Runs `node FILE` in `dir`, killed (our own child, by PID) if it
/// outlives a one-minute hang guard; its output shows where it stood.
fn node(dir: &Path, file: &str) -> (bool, String) {
    let child = Command::new("node")
        .arg(file)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            rx.recv().expect("node's output after the kill")
        }
    }
    .expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn js_client_installs_as_the_tickwire_package_and_the_readme_example_runs() {
    if !Path::new(JS_DIR)
        .join("node_modules/ws/package.json")
        .exists()
    {
        npm(Path::new(JS_DIR), &["ci"]);
    }
    let server = Server::start(&[]);
    let project = std::env::temp_dir().join(format!("tickwire-js-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).expect("temp project");
    npm(&project, &["init", "-y"]);
    // `ws` from the client's own dev dependencies: no registry needed.
    npm(
        &project,
        &["install", JS_DIR, &format!("{JS_DIR}/node_modules/ws")],
    );

    let example = readme_node_example().replace(
        "ws://127.0.0.1:8080/ws",
        &format!("ws://{}/ws", server.addr),
    );
    assert!(example.contains("from \"tickwire\""), "{example}");
    std::fs::write(project.join("app.mjs"), &example).expect("write app.mjs");
    let (ok, out) = node(&project, "app.mjs");
    assert!(ok, "the README's Node example failed:\n{out}");
    assert!(
        out.contains("rttMs"),
        "the example prints the ping answer:\n{out}"
    );

    std::fs::write(
        project.join("require.cjs"),
        "const { OrderBook, TickwireClient } = require(\"tickwire\");\n\
         if (typeof OrderBook !== \"function\" || typeof TickwireClient !== \"function\") process.exit(1);\n\
         console.log(\"required\");\n",
    )
    .expect("write require.cjs");
    let (ok, out) = node(&project, "require.cjs");
    assert!(
        ok && out.contains("required"),
        "require(\"tickwire\"):\n{out}"
    );

    let pkg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{JS_DIR}/package.json")).expect("package.json"),
    )
    .expect("json");
    let types = pkg["exports"]["."]["types"]
        .as_str()
        .expect("types in exports");
    let dts = std::fs::read_to_string(Path::new(JS_DIR).join(types)).expect("types file");
    for name in ["TickwireClient", "OrderBook"] {
        assert!(
            dts.contains(&format!("class {name}")),
            "{types} declares {name}"
        );
    }
    let _ = std::fs::remove_dir_all(&project);
}
