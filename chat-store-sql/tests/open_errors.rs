//! Errors of opening a PostgreSQL store that need no server: they must name where the
//! store tried to go and never show the password.

#![cfg(feature = "postgres")]

use chat_store_sql::{OpenError, PostgresOptions, PostgresStore};

const SECRET: &str = "S3cret-pa55word-do-not-show";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn everything_said(error: &OpenError) -> String {
    let mut said = format!("{error}\n{error:?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        said.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    said
}

#[test]
fn an_unreachable_server_is_named_without_the_password() {
    runtime().block_on(async {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let url = format!("postgres://someone:{SECRET}@127.0.0.1:1/chat");
        let mut options = PostgresOptions::default();
        options.connect_timeout = std::time::Duration::from_secs(5);
        let error = PostgresStore::connect_with(&url, options)
            .await
            .unwrap_err();
        assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
        let shown = error.to_string();
        assert!(shown.contains("127.0.0.1:1/chat"), "{shown}");
        let said = everything_said(&error);
        assert!(!said.contains(SECRET), "the password leaked:\n{said}");
        let core: chat_core::Error = error.into();
        assert!(!format!("{core:?}").contains(SECRET));
    });
}

#[test]
fn a_malformed_url_does_not_echo_the_password() {
    runtime().block_on(async {
        let url = format!("postgres://someone:{SECRET}@127.0.0.1:notaport/chat");
        let error = PostgresStore::connect(&url).await.unwrap_err();
        assert!(matches!(error, OpenError::Config { .. }), "{error:?}");
        let said = everything_said(&error);
        assert!(!said.contains(SECRET), "the password leaked:\n{said}");
    });
}
