//! Where the master key that seals users' API keys comes from.
//!
//! In order: the `CHAT_MASTER_KEY` environment variable, a key file named by the operator,
//! or (for an embedded store only) a key file beside the data, created on first start. A
//! PostgreSQL store never gets a generated key: the data may be shared by several servers,
//! and each would invent its own.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chat_core::MasterKey;
use zeroize::Zeroizing;

use crate::store_url::StoreUrl;

/// How the master key was found, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// From the environment variable.
    Environment,
    /// Read from this file.
    File(PathBuf),
    /// Created in this file on this start.
    Created(PathBuf),
    /// Made up for this process (in-memory store only).
    Ephemeral,
}

/// Why no master key could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key given is not 64 hex characters.
    #[error("the master key from {from} is not 64 hexadecimal characters")]
    Malformed {
        /// Where it came from.
        from: String,
    },
    /// Both the variable and a file were given.
    #[error("give the master key either in CHAT_MASTER_KEY or with --master-key-file, not both")]
    Ambiguous,
    /// A shared database needs the operator's key.
    #[error(
        "a PostgreSQL store needs an explicit master key: set CHAT_MASTER_KEY or --master-key-file"
    )]
    Required,
    /// The key file could not be read or written.
    #[error("the master key file {path} could not be {action}")]
    Io {
        /// The file.
        path: PathBuf,
        /// `read` or `created`.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Finds the master key for `store`. `env` is the value of `CHAT_MASTER_KEY`, if set.
///
/// # Errors
///
/// [`KeyError`] when the key is malformed, missing where it is required, or its file
/// cannot be read or created.
pub fn load(
    store: &StoreUrl,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<(MasterKey, KeySource), KeyError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(KeyError::Ambiguous),
        (Some(hex), None) => MasterKey::from_hex(hex)
            .map(|key| (key, KeySource::Environment))
            .map_err(|_| KeyError::Malformed {
                from: "CHAT_MASTER_KEY".into(),
            }),
        (None, Some(path)) => read(path).map(|key| (key, KeySource::File(path.to_owned()))),
        (None, None) => match store.default_key_file() {
            Some(path) => read_or_create(&path),
            None if matches!(store, StoreUrl::Memory) => {
                Ok((MasterKey::generate(), KeySource::Ephemeral))
            }
            None => Err(KeyError::Required),
        },
    }
}

fn read(path: &Path) -> Result<MasterKey, KeyError> {
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| KeyError::Io {
            path: path.to_owned(),
            action: "read",
            source,
        })?;
    MasterKey::from_hex(&text).map_err(|_| KeyError::Malformed {
        from: path.display().to_string(),
    })
}

fn read_or_create(path: &Path) -> Result<(MasterKey, KeySource), KeyError> {
    let created = |source| KeyError::Io {
        path: path.to_owned(),
        action: "created",
        source,
    };
    if path.exists() {
        return read(path).map(|key| (key, KeySource::File(path.to_owned())));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(created)?;

    // The key is written whole to a private temporary file and then linked into place, so
    // the key file appears complete or not at all, even if the process dies mid-write; and
    // since a link never replaces an existing file, of two servers starting at once one
    // creates the key and the other reads it, and an existing key is never overwritten.
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
    let temp = parent.join(name);
    let key = MasterKey::generate();
    let written = write_private(&temp, key.to_hex().as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            // Make the new name itself durable, not only the file's bytes.
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
            Ok((key, KeySource::Created(path.to_owned())))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read(path).map(|key| (key, KeySource::File(path.to_owned())))
        }
        Err(e) => Err(created(e)),
    }
}

/// Writes `hex` and a newline to a new file only its owner can read, and syncs it.
fn write_private(path: &Path, hex: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(hex)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreUrl::Sled(dir.path().join("data"));
        let (first, source) = load(&store, None, None).unwrap();
        let path = dir.path().join("data/master.key");
        assert_eq!(source, KeySource::Created(path.clone()));
        let (second, source) = load(&store, None, None).unwrap();
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(*first.to_hex(), *second.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn racing_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreUrl::Sqlite(dir.path().join("chat.db"));
        let keys: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load(&store, None, None).unwrap().0.to_hex().to_string()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["chat.db.key"], "no temporary files are left behind");
    }

    #[test]
    fn postgres_needs_a_key() {
        let store = StoreUrl::Postgres("postgres://h/db".into());
        assert!(matches!(load(&store, None, None), Err(KeyError::Required)));
        let hex = "ab".repeat(32);
        assert!(load(&store, Some(&hex), None).is_ok());
        assert!(matches!(
            load(&store, Some("zz"), None),
            Err(KeyError::Malformed { .. })
        ));
    }
}
