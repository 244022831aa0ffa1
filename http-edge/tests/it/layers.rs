//! The module layering of the engine and the edge, as ARCHITECTURE.md
//! draws it: every `use crate::...` (and `crate::...` path) runs from a
//! module to one in a lower layer, or within its own layer; and no set of
//! modules imports each other in a circle, at any depth.
//!
//! Read from the sources, so a new import that breaks the layering fails
//! here, naming the file and the import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The engine's layers, lowest first.
const ENGINE_LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "domain",
        "datakey",
        "error",
        "metrics",
        "model",
        "responder",
        "shutdown",
    ],
    &[
        "passwords",
        "mfa",
        "tokens",
        "hashpool",
        "shard",
        "mail",
        "views",
        "readmodel",
        "admission",
        "social",
        "passkeys",
        "config",
    ],
    &["core"],
    &["signing", "steps"],
    &["ops", "jobs"],
    &["engine"],
];

/// The edge's layers, lowest first.
const EDGE_LAYERS: &[&[&str]] = &[
    &[
        "json",
        "problem",
        "server",
        "clientip",
        "ratelimit",
        "telemetry",
        "requestid",
    ],
    &["bridge", "dto", "app", "config"],
    &["api"],
    &["router", "openapi", "admin"],
];

/// Every `.rs` file under `dir`, but unit-test files.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The module path of a source file (`steps/outbox.rs` -> `steps::outbox`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The `crate::a::b` paths a file names (imports and inline paths), with
/// the line they are on; `#[cfg(test)]` modules at the end are skipped.
fn crate_paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `portcullis_engine::...` and the like
            }
            let path: Vec<String> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !path.is_empty() {
                out.push((n + 1, path));
            }
        }
    }
    out
}

/// Checks one crate: returns the violations found.
fn check(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect();
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let Some(top) = from.first().cloned() else {
            continue; // lib.rs: the crate root may name anything
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, path) in crate_paths(&text) {
            // The longest module the path names.
            let to = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_else(|| path[..1].to_vec());
            let (Some(&rf), Some(&rt)) = (rank.get(top.as_str()), rank.get(to[0].as_str())) else {
                problems.push(format!(
                    "{}:{line}: module {} or {} is in no layer of this test",
                    file.display(),
                    top,
                    to[0]
                ));
                continue;
            };
            if rt > rf {
                problems.push(format!(
                    "{}:{line}: {} (layer {rf}) imports the higher {} (layer {rt})",
                    file.display(),
                    from.join("::"),
                    to.join("::")
                ));
            }
            // A module may use its own descendants and ancestors' items
            // without that being a circle.
            if !to.starts_with(&from) && !from.starts_with(&to) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Circles, at module granularity.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        found: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => {
                let i = stack.iter().position(|s| s == m).unwrap();
                let circle: Vec<String> = stack[i..].iter().map(|s| s.join("::")).collect();
                found.push(format!(
                    "import circle: {} -> {}",
                    circle.join(" -> "),
                    m.join("::")
                ));
                return;
            }
            _ => {}
        }
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for n in edges.get(m).into_iter().flatten() {
            visit(n, edges, state, stack, found);
        }
        stack.pop();
        state.insert(m.clone(), 2);
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        visit(m, &edges, &mut state, &mut Vec::new(), &mut problems);
    }
    problems
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn the_engine_imports_only_downward_and_in_no_circle() {
    let problems = check(&crate_src("engine"), ENGINE_LAYERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_edge_imports_only_downward_and_in_no_circle() {
    let problems = check(&crate_src("http-edge"), EDGE_LAYERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_and_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::A;\npub struct B;\n").unwrap();
    let problems = check(src, &[&["a"], &["b"]]);
    assert!(
        problems.iter().any(|p| p.contains("imports the higher b")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("import circle")),
        "{problems:?}"
    );
}

#[test]
fn only_the_composition_root_names_storage() {
    let src = crate_src("http-edge");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let naming: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "main.rs"))
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("portcullis_storage")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        naming.is_empty(),
        "the request path names storage: {naming:?}"
    );
}
