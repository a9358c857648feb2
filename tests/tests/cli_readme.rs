//! The README's examples, run so that they cannot go stale:
//! - every ```` ```console cli-example ```` block of README.md runs, in order, against one fresh daemon, each `$ bpfmapctl ...`
//!   line compared with the lines below it (`[..]`: any text within a line; `...`: any lines;
//!   an expected `Error: ` line means exit 1, else exit 0);
//! - the ```` ```rust ```` block of the "Rust client" section is client/examples/quickstart.rs,
//!   and that example runs against the daemon and prints what the README says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfmap_tests::{bins, TestEnv};
use cli_support::run_cmd;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// README.md and its text.
fn readme() -> (PathBuf, String) {
    let main = repo_root().join("README.md");
    let text =
        std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("read {}: {e}", main.display()));
    assert!(
        text.contains("```console cli-example"),
        "README.md has no CLI examples"
    );
    (main, text)
}

/// The bodies of the fenced blocks whose info string is `info`.
fn blocks(text: &str, info: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == format!("```{info}") => current = Some(Vec::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => out.push(current.take().unwrap()),
            Some(body) => body.push(line.to_owned()),
        }
    }
    assert!(current.is_none(), "unterminated ```{info} block");
    out
}

/// One `$ bpfmapctl ...` line and the output lines below it.
#[derive(Debug)]
struct Example {
    command: String,
    expected: Vec<String>,
}

fn examples(block: &[String]) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    for line in block {
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Example {
                command: cmd.to_owned(),
                expected: Vec::new(),
            });
        } else {
            let ex = out
                .last_mut()
                .unwrap_or_else(|| panic!("output line before any command: {line:?}"));
            ex.expected.push(line.to_owned());
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for plain words and '…' / "…" quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    words.extend(word);
    words
}

/// `[..]` matches any text within a line.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// `...` alone on a line matches any number of lines.
fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "..." => (0..=lines.len()).any(|i| lines_match(rest, &lines[i..])),
        Some((p, rest)) => {
            !lines.is_empty() && line_matches(p, lines[0]) && lines_match(rest, &lines[1..])
        }
    }
}

#[test]
fn matcher_understands_wildcards() {
    assert!(line_matches("a [..] c", "a bbb c"));
    assert!(line_matches("[..]: hash", "12: hash"));
    assert!(!line_matches("[..]: hash", "12: array"));
    assert!(line_matches("x[..]y[..]z", "x1y2z"));
    assert!(!line_matches("ab[..]ba", "aba"));
    let pats = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(
        &pats(&["a", "...", "d"]),
        &["a", "b", "c", "d"]
    ));
    assert!(lines_match(&pats(&["a", "..."]), &["a"]));
    assert!(!lines_match(&pats(&["a"]), &["a", "b"]));
    assert_eq!(
        shell_words(r#"bpfmapctl map dump x --output 'a {host}.bin' --key "c1 c2""#),
        [
            "bpfmapctl",
            "map",
            "dump",
            "x",
            "--output",
            "a {host}.bin",
            "--key",
            "c1 c2"
        ]
    );
}

#[tokio::test]
async fn readme_cli_examples_run() {
    let (path, text) = readme();
    let all: Vec<Example> = blocks(&text, "console cli-example")
        .iter()
        .flat_map(|b| examples(b))
        .collect();
    assert!(
        all.len() >= 10,
        "{} has only {} CLI examples",
        path.display(),
        all.len()
    );
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    for ex in &all {
        let words = shell_words(&ex.command);
        assert_eq!(
            words.first().map(String::as_str),
            Some("bpfmapctl"),
            "{}: examples must run bpfmapctl: {}",
            path.display(),
            ex.command
        );
        let mut cmd = Command::new(bins::bpfmapctl());
        cmd.args(&words[1..])
            .current_dir(cwd.path())
            .env("BPFMAP_SERVER", t.daemon.unix_addr());
        let r = run_cmd(&mut cmd);
        let output = format!("{}{}", r.stdout, r.stderr);
        let lines: Vec<&str> = output.lines().collect();
        let wants_error = ex.expected.iter().any(|l| l.starts_with("Error: "));
        let want_code = i32::from(wants_error);
        assert!(
            r.code == want_code && lines_match(&ex.expected, &lines),
            "{}: `$ {}`\nexpected (exit {want_code}):\n{}\ngot (exit {}):\n{output}",
            path.display(),
            ex.command,
            ex.expected.join("\n"),
            r.code
        );
    }
}

/// The "Rust client" section shows client/examples/quickstart.rs verbatim, and it runs.
#[tokio::test]
async fn readme_rust_example_is_the_quickstart_and_runs() {
    let root = repo_root();
    let example = std::fs::read_to_string(root.join("client/examples/quickstart.rs")).unwrap();
    let (path, text) = readme();
    let section = text
        .split("## Rust client")
        .nth(1)
        .unwrap_or_else(|| panic!("{} has no \"## Rust client\" section", path.display()));
    let rust = blocks(section, "rust");
    let shown = rust.first().unwrap_or_else(|| {
        panic!(
            "{}: no ```rust block in the Rust client section",
            path.display()
        )
    });
    assert_eq!(
        shown.join("\n").trim_end(),
        example.trim_end(),
        "{}: the Rust example differs from client/examples/quickstart.rs",
        path.display()
    );
    let printed = blocks(section, "text");

    // `cargo test` builds the examples next to the test binaries' target directory.
    let bin = bins::bpfmapctl()
        .parent()
        .unwrap()
        .join("examples/quickstart");
    if !bin.is_file() {
        panic!(
            "{} not built: run `cargo build -p bpfmap-client --examples` (cargo test builds it)",
            bin.display()
        );
    }
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let mut cmd = Command::new(&bin);
    cmd.env("BPFMAP_SERVER", t.daemon.unix_addr());
    let r = run_cmd(&mut cmd);
    assert_eq!(r.code, 0, "quickstart failed: {r:?}");
    if let Some(expected) = printed.first() {
        assert_eq!(
            r.stdout.lines().collect::<Vec<_>>(),
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            "the README's printed output differs from the quickstart's"
        );
    }
}
