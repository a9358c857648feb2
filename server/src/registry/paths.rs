//! Pin paths: where a client-supplied `pin` may point.
//!
//! Relative paths live under `--bpffs-root`; absolute ones must lie on a bpffs mount. `..`,
//! NUL, names bpffs refuses (containing '.'), overlong paths, and symlinks that lead out of
//! the allowed tree are refused before any syscall.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::kernel::is_bpffs;

const PATH_MAX: usize = 4095;
const NAME_MAX: usize = 255;

/// Checks the text of a pin path and makes it absolute (relative paths join `root`).
pub fn normalize(root: &Path, pin: &str) -> Result<PathBuf> {
    if pin.is_empty() {
        return Err(Error::InvalidArgument("pin path is empty".into()));
    }
    if pin.contains('\0') {
        return Err(Error::InvalidArgument(
            "pin path contains a NUL byte".into(),
        ));
    }
    if pin.len() > PATH_MAX {
        return Err(Error::InvalidArgument(format!(
            "pin path is {} bytes long; the limit is {PATH_MAX}",
            pin.len()
        )));
    }
    let path = Path::new(pin);
    let mut out = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        root.to_path_buf()
    };
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::InvalidArgument(format!(
                    "pin path {pin:?}: '..' is not allowed in pin paths"
                )))
            }
            Component::Prefix(_) => {
                return Err(Error::InvalidArgument(format!(
                    "pin path {pin:?} is not a Linux path"
                )))
            }
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if name.len() > NAME_MAX {
                    return Err(Error::InvalidArgument(format!(
                        "pin path {pin:?}: component {:?}... is longer than {NAME_MAX} bytes",
                        name.chars().take(16).collect::<String>()
                    )));
                }
                out.push(&*name);
            }
        }
    }
    if out.as_os_str().len() > PATH_MAX {
        return Err(Error::InvalidArgument(format!(
            "pin path is {} bytes long once under {}; the limit is {PATH_MAX}",
            out.as_os_str().len(),
            root.display()
        )));
    }
    if out == Path::new("/") || out == root {
        return Err(Error::InvalidArgument(format!(
            "pin path {pin:?} names a directory, not a pin"
        )));
    }
    Ok(out)
}

/// bpffs refuses to create pins whose last component contains '.'.
pub fn check_new_name(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains('.') {
        return Err(Error::InvalidArgument(format!(
            "pin name {name:?} contains '.', which bpffs refuses; use '_' or '-' instead"
        )));
    }
    Ok(())
}

/// Checks that `path` (absolute, normalized) stays in the allowed tree once symlinks are
/// followed: under the canonical root when it is under `root`, else on a bpffs mount.
/// `must_exist`: the path itself must exist (resolving), else only its parent (creating).
pub fn confine(root: &Path, root_canon: &Path, path: &Path, must_exist: bool) -> Result<PathBuf> {
    let parent = path.parent().ok_or_else(|| {
        Error::InvalidArgument(format!("pin path {} has no parent", path.display()))
    })?;
    let Ok(parent_canon) = parent.canonicalize() else {
        return Err(Error::NotFound(format!(
            "directory {} does not exist",
            parent.display()
        )));
    };
    let file = path.file_name().unwrap_or_default();
    let mut resolved = parent_canon.join(file);
    if must_exist || resolved.symlink_metadata().is_ok() {
        match resolved.canonicalize() {
            Ok(c) => resolved = c,
            Err(_) if must_exist => {
                return Err(Error::NotFound(format!("no pin at {}", path.display())))
            }
            Err(_) => {}
        }
    }
    if path.starts_with(root) {
        if !resolved.starts_with(root_canon) {
            return Err(Error::InvalidArgument(format!(
                "pin path {} leads out of the bpffs root {} (through a symlink)",
                path.display(),
                root.display()
            )));
        }
    } else {
        let dir = if resolved.is_dir() {
            resolved.clone()
        } else {
            resolved.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        if !is_bpffs(&dir) {
            return Err(Error::InvalidArgument(format!(
                "pin path {} is not on a bpffs mount: pins can only live on bpffs (e.g. under /sys/fs/bpf)",
                path.display()
            )));
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses() {
        let root = Path::new("/sys/fs/bpf/bpfmapd");
        assert_eq!(
            normalize(root, "a/b").ok(),
            Some(PathBuf::from("/sys/fs/bpf/bpfmapd/a/b"))
        );
        assert_eq!(
            normalize(root, "/sys/fs/bpf/x").ok(),
            Some(PathBuf::from("/sys/fs/bpf/x"))
        );
        assert!(normalize(root, "../x").is_err());
        assert!(normalize(root, "a/../../x").is_err());
        assert!(normalize(root, "").is_err());
        assert!(normalize(root, "a\0b").is_err());
        assert!(normalize(root, &"x".repeat(300)).is_err());
        assert!(normalize(root, ".").is_err());
        // Under the 4095-byte limit as given, over it once joined to the root.
        let near_limit = vec!["f".repeat(200); 20].join("/") + "/" + &"g".repeat(60);
        assert!(near_limit.len() < PATH_MAX);
        assert!(normalize(root, &near_limit).is_err());
        assert!(check_new_name(Path::new("/r/a.b")).is_err());
        assert!(check_new_name(Path::new("/r/a_b")).is_ok());
    }
}
