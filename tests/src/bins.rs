//! Where the built binaries are: `bpfmapd` and `bpfmapctl`.
//!
//! An environment variable (`BPFMAPD_BIN`, `BPFMAPCTL_BIN`) wins; otherwise the binary is
//! looked up in the target directory that holds the running test binary
//! (`target/debug/deps/<test>` → `target/debug/<bin>`). `scripts/test.sh` builds every binary
//! of the workspace (`cargo build --workspace --bins`) before `cargo test`.

use std::path::PathBuf;

/// The path of `name`, from `env` or next to the test binary's target directory.
///
/// Panics with the command to run when the binary is missing.
pub fn target_bin(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env}={} does not name a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: run `cargo build --workspace --bins` first \
             (scripts/test.sh does), or set {env} to its path",
            path.display()
        );
    }
    path
}

/// The daemon binary.
pub fn bpfmapd() -> PathBuf {
    target_bin("bpfmapd", "BPFMAPD_BIN")
}

/// The command-line client.
pub fn bpfmapctl() -> PathBuf {
    target_bin("bpfmapctl", "BPFMAPCTL_BIN")
}
