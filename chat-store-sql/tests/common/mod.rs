//! What the PostgreSQL test files share.

use std::io::Write;

use sqlx::Connection;

/// Runs `statements` in order on a connection of its own to `url`, from a thread with a
/// runtime of its own, and reports a failure on standard error instead of panicking: for a
/// test guard's `Drop`, which the suite runs inside its runtime, where nothing can be
/// awaited. `what` names the thing being cleaned up in that report.
pub fn execute_detached(url: &str, statements: Vec<String>, what: &str) {
    let url = url.to_owned();
    let done = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime")
            .block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                for statement in &statements {
                    sqlx::raw_sql(statement).execute(&mut conn).await?;
                }
                conn.close().await
            })
    })
    .join();
    if !matches!(done, Ok(Ok(()))) {
        let _ = writeln!(std::io::stderr(), "could not clean up {what}: {done:?}");
    }
}
