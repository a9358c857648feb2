//! Policy files (`--policy FILE`, TOML) for the tests: [`Rule`]s rendered as `[[rule]]`
//! tables, and a [`PolicyFile`] that is rewritten atomically (write + rename, as an operator
//! or a config manager would) so that the daemon's watcher never reads half a file.
//!
//! ```no_run
//! use bpfmap_tests::policy::{PolicyFile, Rule};
//! let file = PolicyFile::new(&[
//!     Rule::allow(&["uid:0"], &["all"], &["read", "write", "create", "admin"]),
//!     Rule::allow(&["uid:65534"], &["pin:public/*"], &["read"]),
//! ]);
//! let args = file.args(); // ["--policy", "<path>"]
//! ```

use std::path::{Path, PathBuf};

/// One `[[rule]]`.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// Identities (`uid:N`, `group:NAME`, `cert:CN=GLOB`, `san:GLOB`, `anonymous`, `any`, ...).
    pub who: Vec<String>,
    /// Maps (`pin:GLOB`, `name:GLOB`, `id:N`, `managed`, `all`).
    pub maps: Vec<String>,
    /// Granted access (`read`, `write`, `create`, `admin`).
    pub allow: Vec<String>,
    /// Denied access.
    pub deny: Vec<String>,
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Rule {
    /// `who` may do `allow` on `maps`.
    pub fn allow(who: &[&str], maps: &[&str], allow: &[&str]) -> Rule {
        Rule {
            who: owned(who),
            maps: owned(maps),
            allow: owned(allow),
            deny: Vec::new(),
        }
    }

    /// `who` may not do `deny` on `maps`, whatever else allows it.
    pub fn deny(who: &[&str], maps: &[&str], deny: &[&str]) -> Rule {
        Rule {
            who: owned(who),
            maps: owned(maps),
            allow: Vec::new(),
            deny: owned(deny),
        }
    }

    /// uid 0 may do everything on every map: the rule most test policies start with, so that
    /// the harness's root client keeps working.
    pub fn root_all() -> Rule {
        Rule::allow(&["uid:0"], &["all"], ALL)
    }
}

/// Every access kind.
pub const ALL: &[&str] = &["read", "write", "create", "admin"];

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The TOML text of `rules`: each rule a `[[rule]]` table with one key per line.
pub fn render(rules: &[Rule]) -> String {
    let mut out = String::from("# bpfmapd test policy\n");
    for r in rules {
        out.push_str("\n[[rule]]\n");
        out.push_str(&format!("who = {}\n", list(&r.who)));
        out.push_str(&format!("maps = {}\n", list(&r.maps)));
        if !r.allow.is_empty() {
            out.push_str(&format!("allow = {}\n", list(&r.allow)));
        }
        if !r.deny.is_empty() {
            out.push_str(&format!("deny = {}\n", list(&r.deny)));
        }
    }
    out
}

/// A policy file in its own temporary directory (removed on drop).
#[derive(Debug)]
pub struct PolicyFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl PolicyFile {
    /// Writes `rules` to a new file.
    pub fn new(rules: &[Rule]) -> PolicyFile {
        Self::with_text(&render(rules))
    }

    /// Writes `text` verbatim to a new file.
    pub fn with_text(text: &str) -> PolicyFile {
        let dir = tempfile::Builder::new()
            .prefix("bpfmap-policy-")
            .tempdir()
            .expect("temporary directory for the policy");
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).expect("write the policy");
        PolicyFile { dir, path }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `["--policy", <path>]`.
    pub fn args(&self) -> Vec<String> {
        vec!["--policy".into(), self.path.display().to_string()]
    }

    /// Replaces the file with `rules` atomically (new file + rename).
    pub fn rewrite(&self, rules: &[Rule]) {
        self.rewrite_text(&render(rules));
    }

    /// Replaces the file with `text` atomically (new file + rename).
    pub fn rewrite_text(&self, text: &str) {
        let tmp = self.dir.path().join(".policy.toml.new");
        std::fs::write(&tmp, text).expect("write the new policy");
        std::fs::rename(&tmp, &self.path).expect("rename the new policy into place");
    }
}

/// A [`TestEnv`](crate::TestEnv) whose daemon runs with a policy file, its socket open to
/// every user (`--socket-mode 0666` unless `extra_args` sets a mode, directory 0755) so that
/// the policy, not the file mode, decides what a [`Peer`](crate::peer::Peer) may do.
#[derive(Debug)]
pub struct PolicyEnv {
    /// Client (root, Unix socket), daemon, bpffs.
    pub t: crate::TestEnv,
    /// The policy the daemon reads; rewrite it to test reloads.
    pub policy: PolicyFile,
}

impl PolicyEnv {
    /// Starts a daemon with `rules` and `opts` (its `extra_args` come after the policy and
    /// socket flags); None when BPF is unavailable (see [`crate::require_bpf`]).
    pub async fn start(rules: &[Rule], opts: crate::DaemonOptions) -> Option<PolicyEnv> {
        Self::start_text(&render(rules), opts).await
    }

    /// Like [`PolicyEnv::start`] with the policy's text verbatim.
    pub async fn start_text(text: &str, mut opts: crate::DaemonOptions) -> Option<PolicyEnv> {
        let policy = PolicyFile::with_text(text);
        let mut args = policy.args();
        if !opts.extra_args.iter().any(|a| a == "--socket-mode") {
            args.extend(["--socket-mode".to_owned(), "0666".to_owned()]);
        }
        args.append(&mut opts.extra_args);
        opts.extra_args = args;
        let t = crate::TestEnv::start_with(opts).await?;
        crate::peer::open_socket_dir(&t.daemon);
        Some(PolicyEnv { t, policy })
    }
}

impl PolicyFile {
    /// Overwrites the file in place with `text`, which must be exactly as long as the
    /// current content, in one write, and puts the old modification time back: a watcher
    /// that polls size and mtime sees no change, so only SIGHUP (or a content check) reloads.
    pub fn overwrite_keeping_mtime(&self, text: &str) {
        use std::os::unix::fs::FileExt;
        let old = std::fs::read(&self.path).expect("read the policy");
        assert_eq!(
            old.len(),
            text.len(),
            "the new policy must be as long as the old"
        );
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .expect("the policy's mtime");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .expect("open the policy");
        f.write_all_at(text.as_bytes(), 0)
            .expect("write the policy");
        f.set_modified(mtime).expect("restore the policy's mtime");
    }
}
