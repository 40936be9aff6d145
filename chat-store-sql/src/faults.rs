//! What a database error means under the `Store` contract's "faults are typed": the one
//! place that turns an sqlx error into chat-core's [`Error`].
//!
//! A full disk and a database that cannot be reached pass without a code change, so they
//! are [`Error::Unavailable`] with the reason a client can act on (the server answers 503
//! with `Retry-After`); every other error is [`Error::Backend`]. sqlx's error is kept as
//! the source either way.

use chat_core::{Error, Unavailable};

/// The name SQLite errors carry, and how [`classify`] knows to read their codes as SQLite
/// result codes.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &str = "sqlite";

/// The name PostgreSQL errors carry, and how [`classify`] knows to read their codes as
/// SQLSTATEs.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &str = "postgres";

/// `error` from SQLite as chat-core's error.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite(error: sqlx::Error) -> Error {
    classify(SQLITE, error)
}

/// `error` from SQLite's own API (the SQLite store's reads and appends, which do not go
/// through sqlx) as chat-core's error.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_native(error: rusqlite::Error) -> Error {
    match native_reason(&error) {
        Some(reason) => Error::unavailable(SQLITE, reason, error),
        None => Error::backend(SQLITE, error),
    }
}

/// What `error`, which ended a transaction several SQLite writes shared, means for each
/// write but the one that gets `error` itself: the same kind of fault, its text as the
/// source (the driver's error cannot be copied).
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_native_shared(error: &rusqlite::Error) -> Error {
    let source = SharedTransaction(error.to_string());
    match native_reason(error) {
        Some(reason) => Error::unavailable(SQLITE, reason, source),
        None => Error::backend(SQLITE, source),
    }
}

/// Why `error` from SQLite's own API means the store cannot serve now, if it does: a full
/// disk, or a database file that cannot be opened.
#[cfg(feature = "sqlite")]
fn native_reason(error: &rusqlite::Error) -> Option<Unavailable> {
    match error.sqlite_error_code()? {
        rusqlite::ErrorCode::DiskFull => Some(Unavailable::OutOfSpace),
        rusqlite::ErrorCode::CannotOpen => Some(Unavailable::Unreachable),
        _ => None,
    }
}

/// Why a write failed with others: the transaction they shared failed.
#[cfg(feature = "sqlite")]
#[derive(Debug, thiserror::Error)]
#[error("the transaction this write shared with others failed: {0}")]
struct SharedTransaction(String);

/// `error` from PostgreSQL as chat-core's error.
#[cfg(feature = "postgres")]
pub(crate) fn postgres(error: sqlx::Error) -> Error {
    classify(POSTGRES, error)
}

/// `error` from the `backend` database as chat-core's error.
pub(crate) fn classify(backend: &'static str, error: sqlx::Error) -> Error {
    match reason(backend, &error) {
        Some(reason) => Error::unavailable(backend, reason, error),
        None => Error::backend(backend, error),
    }
}

/// Why `error` means the store cannot serve now, if it does.
fn reason(backend: &'static str, error: &sqlx::Error) -> Option<Unavailable> {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            match backend {
                #[cfg(feature = "sqlite")]
                SQLITE => sqlite_reason(&code),
                #[cfg(feature = "postgres")]
                POSTGRES => postgres_reason(&code),
                _ => None,
            }
        }
        // No connection in time (the server is down, or every connection is busy), the
        // store is shutting down, or the connection broke: all pass by themselves.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => Some(Unavailable::Unreachable),
        _ => None,
    }
}

/// An SQLite result code, as sqlx gives it: the extended code in decimal, which carries the
/// primary code in its low byte.
#[cfg(feature = "sqlite")]
fn sqlite_reason(code: &str) -> Option<Unavailable> {
    /// "Insertion failed because database is full": the disk, or `max_page_count`.
    const SQLITE_FULL: i32 = 13;
    let code: i32 = code.parse().ok()?;
    (code & 0xff == SQLITE_FULL).then_some(Unavailable::OutOfSpace)
}

/// A PostgreSQL SQLSTATE.
#[cfg(feature = "postgres")]
fn postgres_reason(sqlstate: &str) -> Option<Unavailable> {
    match sqlstate {
        // disk_full
        "53100" => Some(Unavailable::OutOfSpace),
        // admin_shutdown, crash_shutdown, cannot_connect_now (starting up or recovering),
        // and too_many_connections: the server gives no connection for now.
        "57P01" | "57P02" | "57P03" | "53300" => Some(Unavailable::Unreachable),
        // Class 08, connection exceptions.
        state if state.starts_with("08") => Some(Unavailable::Unreachable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::fmt;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A database error with the given code, standing in for a driver's.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl fmt::Display for Coded {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "code {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }

        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn database(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Coded(code)))
    }

    /// The reason `classify` gives, or `None` for `Error::Backend`.
    fn reason_of(backend: &'static str, error: sqlx::Error) -> Option<Unavailable> {
        match classify(backend, error) {
            Error::Unavailable {
                reason,
                backend: named,
                source,
            } => {
                assert_eq!(named, backend);
                assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
                Some(reason)
            }
            Error::Backend {
                backend: named,
                source,
            } => {
                assert_eq!(named, backend);
                assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
                None
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn losing_the_connection_is_unreachable_on_either_database() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let tls = || sqlx::Error::Tls("handshake failed".into());
        for backend in [
            #[cfg(feature = "sqlite")]
            SQLITE,
            #[cfg(feature = "postgres")]
            POSTGRES,
        ] {
            for error in [
                sqlx::Error::PoolTimedOut,
                sqlx::Error::PoolClosed,
                sqlx::Error::Io(io()),
                tls(),
            ] {
                assert_eq!(
                    reason_of(backend, error),
                    Some(Unavailable::Unreachable),
                    "{backend}"
                );
            }
            assert_eq!(reason_of(backend, sqlx::Error::RowNotFound), None);
            assert_eq!(
                reason_of(backend, sqlx::Error::Protocol("garbled".into())),
                None
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_full_in_any_extended_form_is_out_of_space() {
        assert_eq!(
            reason_of(SQLITE, database("13")),
            Some(Unavailable::OutOfSpace)
        );
        // No extended code of SQLITE_FULL exists today; one would keep 13 in its low byte.
        assert_eq!(
            reason_of(SQLITE, database("269")),
            Some(Unavailable::OutOfSpace)
        );
        // SQLITE_IOERR_WRITE (778 = 10 | 3 << 8), SQLITE_BUSY, a unique violation (2067),
        // and SQLITE_CANTOPEN are not "full".
        for code in ["778", "5", "2067", "14", "not a number"] {
            assert_eq!(reason_of(SQLITE, database(code)), None, "{code}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_sqlstates() {
        assert_eq!(
            reason_of(POSTGRES, database("53100")),
            Some(Unavailable::OutOfSpace)
        );
        for state in [
            "08000", "08003", "08006", "08001", "08P01", "57P01", "57P02", "57P03",
        ] {
            assert_eq!(
                reason_of(POSTGRES, database(state)),
                Some(Unavailable::Unreachable),
                "{state}"
            );
        }
        // A unique violation, a serialization failure, a query cancelled, out of memory:
        // the system's failures, or the caller's, but not ones that pass by themselves.
        for state in ["23505", "40001", "57014", "53200", "42P01"] {
            assert_eq!(reason_of(POSTGRES, database(state)), None, "{state}");
        }
    }

    /// SQLite's real error for a full database, from the real driver.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_full_sqlite_database_is_out_of_space() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x BLOB)")
            .execute(&mut conn)
            .await
            .unwrap();
        // No more pages than it has now: the next page it needs is refused.
        sqlx::query("PRAGMA max_page_count = 1")
            .execute(&mut conn)
            .await
            .unwrap();
        let error = sqlx::query("INSERT INTO t VALUES (zeroblob(100000))")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert_eq!(
            reason_of(SQLITE, error),
            Some(Unavailable::OutOfSpace),
            "the driver's code for a full database"
        );
    }

    /// PostgreSQL's real errors for these SQLSTATEs, raised by a real server, when
    /// `CHAT_TEST_POSTGRES_URL` names one.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn real_postgres_errors_are_read_by_their_sqlstate() {
        use sqlx::Connection;
        let Ok(url) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
            eprintln!("CHAT_TEST_POSTGRES_URL is not set: skipping");
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for (state, expected) in [
            ("disk_full", Some(Unavailable::OutOfSpace)),
            ("admin_shutdown", Some(Unavailable::Unreachable)),
            ("connection_failure", Some(Unavailable::Unreachable)),
            ("unique_violation", None),
        ] {
            let error = sqlx::query(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{state}'; END $$"
            ))
            .execute(&mut conn)
            .await
            .unwrap_err();
            assert_eq!(reason_of(POSTGRES, error), expected, "{state}");
        }
        conn.close().await.unwrap();
    }
}
