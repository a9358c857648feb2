//! [`Peer`]: run `bpfmap-test-peer` as another user (uid, primary gid, supplementary groups)
//! against the daemon's Unix socket, and [`TestGroup`]: a system group made for one test.
//!
//! ```no_run
//! # async fn t(daemon: &bpfmap_tests::Daemon) {
//! use bpfmap_tests::peer::{open_socket_dir, Peer};
//! open_socket_dir(daemon);                       // the daemon's directory 0755
//! let r = Peer::nobody().run(daemon, &["list", "lookup id:42 01000000"]);
//! r[0].assert_ok();
//! r[1].assert_code("PermissionDenied", &["Lookup", "read"]);
//! # }
//! ```

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::bins::target_bin;
use crate::daemon::Daemon;

/// The helper binary.
pub fn peer_bin() -> std::path::PathBuf {
    target_bin("bpfmap-test-peer", "BPFMAP_TEST_PEER_BIN")
}

/// Lets every user reach the daemon's socket through its directory (mode 0755); the socket
/// file's own mode (`--socket-mode`) and group (`--socket-group`) still apply.
pub fn open_socket_dir(daemon: &Daemon) {
    std::fs::set_permissions(daemon.dir(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755 the daemon's directory");
}

/// Who the helper runs as.
#[derive(Debug, Clone)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (exactly these).
    pub groups: Vec<u32>,
}

/// One call's outcome, from one output line: `<op> <code> <detail or message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The op's first word (`lookup`, `update`, ...), or `connect-error`.
    pub op: String,
    /// `Ok`, or the gRPC code's name (`PermissionDenied`, `NotFound`, ...).
    pub code: String,
    /// The detail printed for a success, or the status message.
    pub text: String,
}

impl Reply {
    /// True for a success.
    pub fn ok(&self) -> bool {
        self.code == "Ok"
    }

    /// Panics unless the call succeeded.
    #[track_caller]
    pub fn assert_ok(&self) -> &Reply {
        assert!(self.ok(), "{} should succeed: {self:?}", self.op);
        self
    }

    /// Panics unless the call failed with `code` and its message holds every word of
    /// `words` (ignoring case).
    #[track_caller]
    pub fn assert_code(&self, code: &str, words: &[&str]) -> &Reply {
        assert_eq!(self.code, code, "{}: {self:?}", self.op);
        let t = self.text.to_lowercase();
        for w in words {
            assert!(
                t.contains(&w.to_lowercase()),
                "{} message should mention {w:?}: {self:?}",
                self.op
            );
        }
        self
    }

    /// The ids of a `list` reply.
    pub fn ids(&self) -> Vec<u32> {
        self.assert_ok();
        self.text
            .strip_prefix("ids=")
            .unwrap_or_else(|| panic!("not a list reply: {self:?}"))
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("map id"))
            .collect()
    }
}

impl Peer {
    /// uid 65534 (`nobody`), gid 65534, no supplementary groups.
    pub fn nobody() -> Peer {
        Peer {
            uid: 65534,
            gid: 65534,
            groups: Vec::new(),
        }
    }

    /// With these supplementary groups.
    pub fn groups(mut self, groups: &[u32]) -> Peer {
        self.groups = groups.to_vec();
        self
    }

    /// With this primary group.
    pub fn gid(mut self, gid: u32) -> Peer {
        self.gid = gid;
        self
    }

    /// Runs `ops` (see the helper's doc) over the daemon's Unix socket, one connection for
    /// all; returns one reply per op, or a single `connect-error` reply.
    pub fn run(&self, daemon: &Daemon, ops: &[&str]) -> Vec<Reply> {
        self.run_addr(&daemon.unix_addr(), ops)
    }

    /// Like [`Peer::run`], on any address.
    pub fn run_addr(&self, addr: &str, ops: &[&str]) -> Vec<Reply> {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        let mut cmd = Command::new(peer_bin());
        cmd.args(["--uid", &self.uid.to_string()])
            .args(["--gid", &self.gid.to_string()])
            .args(["--groups", &groups.join(",")])
            .args(["--addr", addr]);
        for op in ops {
            cmd.args(["--op", op]);
        }
        let out = cmd.output().expect("run bpfmap-test-peer");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "bpfmap-test-peer failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let replies: Vec<Reply> = stdout
            .lines()
            .map(|l| {
                let mut it = l.splitn(3, ' ');
                let op = it.next().unwrap_or_default().to_owned();
                if op == "connect-error" {
                    let rest: Vec<&str> = it.collect();
                    return Reply {
                        op,
                        code: "connect-error".into(),
                        text: rest.join(" "),
                    };
                }
                Reply {
                    op,
                    code: it.next().unwrap_or_default().to_owned(),
                    text: it.next().unwrap_or_default().to_owned(),
                }
            })
            .collect();
        let connect_failed = replies.len() == 1 && replies[0].op == "connect-error";
        assert!(
            connect_failed || replies.len() == ops.len(),
            "expected {} replies for {ops:?}, got {replies:?}",
            ops.len()
        );
        replies
    }
}

/// A system group created for one test (`groupadd`), deleted on drop.
#[derive(Debug)]
pub struct TestGroup {
    /// Its name.
    pub name: String,
    /// Its gid.
    pub gid: u32,
}

static GROUPS: AtomicU32 = AtomicU32::new(0);

impl TestGroup {
    /// Creates a group named `bpfmt<pid>_<n>`.
    pub fn new() -> TestGroup {
        let name = format!(
            "bpfmt{:x}_{}",
            std::process::id(),
            GROUPS.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("groupadd")
            .arg(&name)
            .output()
            .expect("run groupadd");
        assert!(
            out.status.success(),
            "groupadd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gid = nix::unistd::Group::from_name(&name)
            .expect("look the group up")
            .unwrap_or_else(|| panic!("group {name} not found after groupadd"))
            .gid
            .as_raw();
        TestGroup { name, gid }
    }
}

impl Default for TestGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}
