//! Shared by the `cli*` tests: run `bpfmapctl` against a test daemon, run bpftool's plain
//! (non-JSON) output for comparison.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bpfmap_tests::bins;

/// The outcome of one `bpfmapctl` run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// `bpfmapctl --server <addr> ...`, in a working directory of its own.
#[derive(Debug, Clone)]
pub struct Ctl {
    /// The servers given with --server, in order.
    pub servers: Vec<String>,
    /// Working directory of the runs (for relative --output/--input paths).
    pub cwd: PathBuf,
}

impl Ctl {
    /// Talks to one daemon.
    pub fn new(addr: &str, cwd: &Path) -> Ctl {
        Ctl {
            servers: vec![addr.to_owned()],
            cwd: cwd.to_owned(),
        }
    }

    /// Runs `bpfmapctl [--server S]... args`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(bins::bpfmapctl());
        for s in &self.servers {
            cmd.arg("--server").arg(s);
        }
        run_cmd(cmd.args(args).current_dir(&self.cwd))
    }

    /// Runs and expects exit 0 with nothing on stderr; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.code == 0 && r.stderr.is_empty(),
            "bpfmapctl {args:?} failed: exit {}\nstdout: {}\nstderr: {}",
            r.code,
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs and expects exit 1 with `Error: <code>: ...` on stderr; returns stderr.
    pub fn remote_err(&self, args: &[&str], code: &str) -> String {
        let r = self.run(args);
        let prefix = format!("Error: {code}: ");
        assert!(
            r.code == 1 && r.stderr.starts_with(&prefix),
            "bpfmapctl {args:?}: expected exit 1 and {prefix:?}, got exit {}\nstdout: {}\nstderr: {}",
            r.code,
            r.stdout,
            r.stderr
        );
        r.stderr
    }

    /// Runs and expects exit 2 (usage); returns stderr.
    pub fn usage_err(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.code == 2 && !r.stderr.is_empty(),
            "bpfmapctl {args:?}: expected a usage error (exit 2), got exit {}\nstdout: {}\nstderr: {}",
            r.code,
            r.stdout,
            r.stderr
        );
        r.stderr
    }
}

/// Runs a prepared command with stdin closed and BPFMAP_SERVER unset unless set on `cmd`.
pub fn run_cmd(cmd: &mut Command) -> Run {
    if !cmd.get_envs().any(|(k, _)| k == "BPFMAP_SERVER") {
        cmd.env_remove("BPFMAP_SERVER");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `bpftool <args>` (plain text output); panics on failure.
pub fn bpftool_text(args: &[&str]) -> String {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run bpftool: {e}"));
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bpftool -j <args>` parsed; panics on failure.
pub fn bpftool_json(args: &[&str]) -> serde_json::Value {
    bpfmap_tests::bpftool::json(args)
}

/// Parses one JSON document printed by bpfmapctl.
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Sorted lines of bpftool-style text (entry order is the kernel's, not stable across maps).
pub fn sorted_entries(dump: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = dump
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array: {dump}"))
        .iter()
        .map(|e| e.to_string())
        .collect();
    v.sort();
    v
}
