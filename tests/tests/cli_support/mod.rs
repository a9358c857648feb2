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

/// A `bpfmapctl` that keeps running (`map events`, `map watch`): its stdout lines as they
/// come, and SIGINT as Ctrl+C.
#[derive(Debug)]
pub struct Following {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Ctl {
    /// Starts `bpfmapctl [--server S]... args` with stdout piped.
    pub fn follow(&self, args: &[&str]) -> Following {
        use std::io::BufRead;
        let mut cmd = Command::new(bins::bpfmapctl());
        for s in &self.servers {
            cmd.arg("--server").arg(s);
        }
        let mut child = cmd
            .args(args)
            .current_dir(&self.cwd)
            .env_remove("BPFMAP_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bpfmapctl {args:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Following {
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

impl Following {
    /// The next line, or None after `timeout` (or at the end of the output).
    pub fn line(&mut self, timeout: std::time::Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Lines until one contains `needle` (inclusive); panics after `timeout`.
    pub fn until(&mut self, needle: &str, timeout: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.line(left) {
                Some(l) => {
                    let done = l.contains(needle);
                    out.push(l);
                    if done {
                        return out;
                    }
                }
                None => panic!("no line with {needle:?} within {timeout:?}; got {out:?}"),
            }
        }
    }

    /// The exit code if it has exited.
    pub fn try_exit(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .expect("try_wait")
            .map(|s| s.code().unwrap_or(-1))
    }

    /// Waits up to `timeout` for the exit code; panics (with stderr) if it still runs.
    pub fn exit(&mut self, timeout: std::time::Duration) -> i32 {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(code) = self.try_exit() {
                return code;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "bpfmapctl did not exit within {timeout:?}; stdout so far {:?}",
            self.seen
        );
    }

    /// Sends SIGINT (Ctrl+C).
    pub fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    }

    /// Its standard error, after it exited.
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
