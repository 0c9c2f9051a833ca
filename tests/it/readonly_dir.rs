//! A data directory this process cannot write, for the read-only tests.
//!
//! A non-root user gets one from `chmod a-w` on every directory in it. Root ignores
//! permission bits, so as root the directory gets a read-only bind mount over itself
//! (read-only media as far as the process can tell: writes fail with EROFS). Without
//! the privilege to mount, the test fails: it never passes without checking. Either
//! way creating a file in it is checked to fail before the test goes on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct ReadOnlyDir {
    root: PathBuf,
    dirs: Vec<PathBuf>,
    mounted: bool,
}

fn dirs_under(root: &Path, found: &mut Vec<PathBuf>) {
    found.push(root.to_owned());
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            dirs_under(&entry.path(), found);
        }
    }
}

fn can_create_in(dir: &Path) -> bool {
    let probe = dir.join(".write-probe");
    match fs::File::create(&probe) {
        Ok(_) => {
            fs::remove_file(&probe).unwrap();
            true
        }
        Err(_) => false,
    }
}

impl ReadOnlyDir {
    /// Makes `root` and everything under it unwritable until dropped.
    pub fn new(root: &Path) -> ReadOnlyDir {
        let mut dirs = Vec::new();
        dirs_under(root, &mut dirs);
        for dir in &dirs {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        }
        let mut guard = ReadOnlyDir {
            root: root.to_owned(),
            dirs,
            mounted: false,
        };
        if can_create_in(root) {
            // Root: permission bits do not stop it; a read-only bind mount does.
            let status = Command::new("mount")
                .args(["--bind", "-o", "ro"])
                .arg(root)
                .arg(root)
                .status()
                .expect("running mount");
            assert!(
                status.success(),
                "running as root, and a read-only bind mount failed: run the read-only \
                 tests as a non-root user or with the privilege to mount"
            );
            guard.mounted = true;
        }
        for dir in &guard.dirs {
            assert!(!can_create_in(dir), "{} is still writable", dir.display());
        }
        guard
    }

    /// How the directory was made read-only, for messages.
    pub fn mechanism(&self) -> &'static str {
        if self.mounted {
            "read-only bind mount"
        } else {
            "chmod a-w"
        }
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.root).status();
        }
        for dir in &self.dirs {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
        }
    }
}
