//! Whether a database's schema is one this program may use: refusing a schema a newer
//! program migrated, and one that is behind when migrations are not run on open.

use sqlx::migrate::Migrator;

use crate::OpenError;

/// The newest migration `migrator` carries.
pub(crate) fn known_version(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database that a newer program has migrated, and, when migrations are not run
/// on open, one that is behind.
pub(crate) fn check_versions(
    backend: &'static str,
    location: &str,
    migrator: &Migrator,
    applied: &[i64],
    will_migrate: bool,
) -> Result<(), OpenError> {
    let known = known_version(migrator);
    let found = applied.iter().copied().max().unwrap_or(0);
    let unknown = applied
        .iter()
        .any(|v| !migrator.iter().any(|m| m.version == *v));
    if unknown || found > known {
        return Err(OpenError::SchemaTooNew {
            backend,
            location: location.to_owned(),
            found,
            known,
        });
    }
    let pending = migrator
        .iter()
        .any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
    if pending && !will_migrate {
        return Err(OpenError::SchemaTooOld {
            backend,
            location: location.to_owned(),
            found,
            known,
        });
    }
    Ok(())
}

pub(crate) fn migrate_error(
    backend: &'static str,
    location: &str,
    migrator: &Migrator,
    error: sqlx::migrate::MigrateError,
) -> OpenError {
    match error {
        // A race with another process that migrated further between our check and the run.
        sqlx::migrate::MigrateError::VersionMissing(found) => OpenError::SchemaTooNew {
            backend,
            location: location.to_owned(),
            found,
            known: known_version(migrator),
        },
        other => OpenError::Migrate {
            backend,
            location: location.to_owned(),
            source: Box::new(other),
        },
    }
}
