//! bpffs: checking that a directory lies on one, and making the daemon's root directory.
//!
//! Pins can only live on bpffs. The daemon's `--bpffs-root` must be on one; when it is under
//! `/sys/fs/bpf` and nothing is mounted there, the daemon mounts bpffs itself (as systemd
//! would), otherwise it fails with the command that fixes it.

use std::path::{Path, PathBuf};

/// Whether `path` (which must exist) is on a bpffs mount.
pub fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
        .unwrap_or(false)
}

/// Makes sure `root` exists as a directory on bpffs, mounting bpffs at `/sys/fs/bpf` when
/// `root` is below it and nothing is mounted there. The error says what to do.
pub fn ensure_bpffs_dir(root: &Path) -> Result<(), String> {
    if !root.is_absolute() {
        return Err(format!(
            "--bpffs-root {} must be an absolute path",
            root.display()
        ));
    }
    let existing = first_existing_ancestor(root);
    if !is_bpffs(&existing) {
        let sys_bpf = Path::new("/sys/fs/bpf");
        if root.starts_with(sys_bpf) && !is_bpffs(sys_bpf) {
            std::fs::create_dir_all(sys_bpf)
                .map_err(|e| format!("cannot create {}: {e}", sys_bpf.display()))?;
            nix::mount::mount(Some("bpf"), sys_bpf, Some("bpf"), nix::mount::MsFlags::empty(), None::<&str>).map_err(|e| {
                format!("bpffs is not mounted at /sys/fs/bpf and mounting it failed ({e}); run `mount -t bpf bpf /sys/fs/bpf` as root")
            })?;
            tracing::info!("mounted bpffs at /sys/fs/bpf");
        } else {
            return Err(format!(
                "--bpffs-root {} is not on a bpffs mount ({} is not bpffs); mount one with `mount -t bpf bpf <dir>` and point --bpffs-root inside it",
                root.display(),
                existing.display()
            ));
        }
    }
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create --bpffs-root {}: {e}", root.display()))?;
    if !is_bpffs(root) {
        return Err(format!(
            "--bpffs-root {} is not on a bpffs mount",
            root.display()
        ));
    }
    Ok(())
}

fn first_existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}
