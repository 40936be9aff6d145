//! What a failed insert means under the `Store` contract: which unique key clashed, or which
//! parent is missing, answered in the order `MemoryStore` checks them.
//!
//! A database reports only that *some* unique index was violated, so where a table has two
//! (the id and a natural key), the store asks it afterwards which one is taken.

use std::future::Future;

use chat_core::{Entity, Error, Result};

use crate::faults::classify;
use crate::rows::Dialect;

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

pub(crate) fn conflict(entity: Entity, field: &'static str) -> Error {
    Error::Conflict { entity, field }
}

/// Whether a probe (`SELECT 1 FROM … WHERE …`) found a row.
pub(crate) async fn found<R: Dialect>(
    probe: impl Future<Output = Result<Option<R>, sqlx::Error>>,
) -> Result<bool> {
    probe
        .await
        .map(|row| row.is_some())
        .map_err(|error| classify(R::BACKEND, error))
}

/// The answer to an insert into a table unique on its id and on `key`: on a unique
/// violation, `key_taken` (run only then) says whether `key` clashed; otherwise the id did.
pub(crate) async fn insert_keyed<T>(
    backend: &'static str,
    inserted: Result<T, sqlx::Error>,
    entity: Entity,
    key: &'static str,
    key_taken: impl Future<Output = Result<bool>>,
) -> Result<()> {
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(conflict(entity, if key_taken.await? { key } else { "id" }))
        }
        Err(e) => Err(classify(backend, e)),
    }
}

/// The answer to an insert that copies from its parent's row (`INSERT … SELECT … FROM
/// parent WHERE …`), so that "the parent exists and is the caller's" is part of the insert.
///
/// No row inserted means the parent is missing, unless the id is already taken, which
/// `id_taken` (run only then) says; the id clash is reported first, as `MemoryStore` does.
pub(crate) async fn insert_under<T>(
    backend: &'static str,
    inserted: Result<Option<T>, sqlx::Error>,
    entity: Entity,
    parent: Entity,
    id_taken: impl Future<Output = Result<bool>>,
) -> Result<T> {
    match inserted {
        Ok(Some(done)) => Ok(done),
        Ok(None) => {
            if id_taken.await? {
                Err(conflict(entity, "id"))
            } else {
                Err(Error::NotFound(parent))
            }
        }
        Err(e) if is_unique_violation(&e) => Err(conflict(entity, "id")),
        Err(e) if is_foreign_key_violation(&e) => Err(Error::NotFound(parent)),
        Err(e) => Err(classify(backend, e)),
    }
}
