//! [`Bpffs`]: a private bpf filesystem for one test.
//!
//! A temporary directory with a fresh `bpf` mount at `<tmp>/bpffs`. Pins made in it vanish
//! with it: dropping the guard unmounts (lazily if the mount is busy) and removes the
//! directory, which releases every map that only its pins kept alive.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A bpffs mounted for one test; unmounted on drop.
#[derive(Debug)]
pub struct Bpffs {
    dir: Option<tempfile::TempDir>,
    mnt: PathBuf,
}

impl Bpffs {
    /// Mounts a new bpffs in a new temporary directory. Panics if the mount fails.
    pub fn new() -> Bpffs {
        let dir = tempfile::Builder::new()
            .prefix("bpfmap-test-")
            .tempdir()
            .expect("create a temporary directory");
        let mnt = dir.path().join("bpffs");
        std::fs::create_dir(&mnt).expect("create the bpffs mount point");
        if let Err(e) = mount(
            Some("bpf"),
            &mnt,
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        ) {
            panic!("mount -t bpf bpf {}: {e}", mnt.display());
        }
        Bpffs {
            dir: Some(dir),
            mnt,
        }
    }

    /// The mount point: `<tmp>/bpffs`.
    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// The daemon's `--bpffs-root`: `<tmp>/bpffs/bpfmapd` (not created here: the daemon
    /// makes it, as it must for its default root).
    pub fn root(&self) -> PathBuf {
        self.mnt.join("bpfmapd")
    }

    /// `<root>/<rel>`: where the daemon pins a map created with name or pin `rel`.
    pub fn pin(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// The temporary directory that holds the mount point (plain filesystem, for sockets
    /// and logs).
    pub fn tmp(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/"))
    }
}

impl Default for Bpffs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        match umount2(&self.mnt, MntFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EBUSY) => {
                if let Err(e) = umount2(&self.mnt, MntFlags::MNT_DETACH) {
                    eprintln!("lazy umount {}: {e}", self.mnt.display());
                }
            }
            Err(e) => eprintln!("umount {}: {e}", self.mnt.display()),
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("remove {}: {e}", path.display());
            }
        }
    }
}
