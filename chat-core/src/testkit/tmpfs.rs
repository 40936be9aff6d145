//! A small file system that really fills, for a store's full-disk tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// A tmpfs of a given size, mounted on a temporary directory and unmounted when dropped:
/// a disk that fills for real, so a store's full-disk behaviour is tested against the
/// engine's own write and commit failures rather than a stand-in.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `mib` MiB. `None`, with a line on stderr, when this process may not
    /// mount (not root), so the caller skips its case.
    ///
    /// # Panics
    ///
    /// When `CI` is set and the mount fails: under CI the full-disk cases must run.
    #[must_use]
    pub fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory to mount on");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(Self { dir }),
            _ if std::env::var_os("CI").is_some() => {
                panic!("CI is set but a tmpfs could not be mounted: the full-disk cases must run")
            }
            _ => {
                eprintln!("cannot mount a tmpfs (not root?): skipping this full-disk case");
                None
            }
        }
    }

    /// Where it is mounted.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives the file system `mib` MiB in all, as an operator freeing space would.
    ///
    /// # Panics
    ///
    /// When the remount fails.
    pub fn grow(&self, mib: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(self.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
