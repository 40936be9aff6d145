//! Opening: what is refused, and that it is refused with a typed error, never a panic.

use chat_store_sled::{FORMAT_VERSION, OpenError, SledStore};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn a_fresh_directory_opens_and_opens_again() {
    let dir = dir();
    let path = dir.path().join("store");
    drop(SledStore::open(&path).expect("a new store opens"));
    drop(SledStore::open(&path).expect("an existing store opens"));
    // An existing empty directory is fine too.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    drop(SledStore::open(&empty).expect("an empty directory opens"));
}

#[test]
fn a_newer_format_version_is_refused() {
    let dir = dir();
    let path = dir.path().join("store");
    drop(SledStore::open(&path).unwrap());
    {
        let db = sled::open(&path).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("format_version", &(FORMAT_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&path) {
        Err(OpenError::UnsupportedVersion {
            found, supported, ..
        }) => {
            assert_eq!(found, FORMAT_VERSION + 1);
            assert_eq!(supported, FORMAT_VERSION);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn a_malformed_format_version_is_refused() {
    let dir = dir();
    let path = dir.path().join("store");
    drop(SledStore::open(&path).unwrap());
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", "one")
            .unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        SledStore::open(&path),
        Err(OpenError::NotADatabase { .. })
    ));
}

#[test]
fn a_creation_cut_short_before_the_version_opens_as_new() {
    let dir = dir();
    {
        // sled's files and our empty trees, but no version yet.
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("meta").unwrap();
        db.open_tree("messages").unwrap();
        db.flush().unwrap();
    }
    drop(SledStore::open(dir.path()).expect("an empty database is taken as new"));
    drop(SledStore::open(dir.path()).expect("and has its version now"));
}

#[test]
fn a_directory_of_other_files_is_refused_and_left_alone() {
    let dir = dir();
    std::fs::write(dir.path().join("notes.txt"), "not a database").unwrap();
    let result = SledStore::open(dir.path());
    assert!(
        matches!(result, Err(OpenError::NotADatabase { .. })),
        "{result:?}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing may be created there");
}

#[test]
fn a_regular_file_is_refused() {
    let dir = dir();
    let file = dir.path().join("file");
    std::fs::write(&file, "hello").unwrap();
    let result = SledStore::open(&file);
    assert!(
        matches!(result, Err(OpenError::NotADatabase { .. })),
        "{result:?}"
    );
}

#[test]
fn garbage_sled_files_are_an_error_not_a_panic() {
    let dir = dir();
    std::fs::write(dir.path().join("conf"), b"\x00\x01garbage conf").unwrap();
    std::fs::write(dir.path().join("db"), vec![0xa5; 4096]).unwrap();
    let result = std::panic::catch_unwind(|| SledStore::open(dir.path()).map(drop));
    let result = result.expect("opening garbage must not panic");
    assert!(result.is_err(), "garbage must not open");
}

#[test]
fn another_programs_sled_database_is_refused() {
    let dir = dir();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert("someone", "else").unwrap();
        db.flush().unwrap();
    }
    let result = SledStore::open(dir.path());
    assert!(
        matches!(result, Err(OpenError::NotADatabase { .. })),
        "{result:?}"
    );
}

#[test]
fn a_path_that_cannot_be_created_is_an_io_error() {
    let dir = dir();
    let file = dir.path().join("file");
    std::fs::write(&file, "hello").unwrap();
    // A directory cannot be made under a regular file, whoever runs the test (root
    // ignores permission bits, so a read-only directory would not do).
    let result = SledStore::open(file.join("store"));
    match result {
        Err(e @ OpenError::Io { .. }) => {
            let as_core: chat_core::Error = e.into();
            assert!(matches!(
                as_core,
                chat_core::Error::Backend {
                    backend: "sled",
                    ..
                }
            ));
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn a_store_in_use_is_refused() {
    let dir = dir();
    let first = SledStore::open(dir.path()).unwrap();
    let second = SledStore::open(dir.path());
    assert!(
        matches!(second, Err(OpenError::Locked { .. })),
        "{second:?}"
    );
    drop(first);
    drop(SledStore::open(dir.path()).expect("free again once the first is dropped"));
}
