//! `chat-server copy --from URL --to URL [--force]`: every record of one store into
//! another, in batches, so memory does not grow with the data.
//!
//! Records go in kind by kind, parents first ([`RecordKind::ALL`]), each through
//! [`Store::import`], which keeps ids, times, `seq`s, counters and sealed keys as they are
//! and keeps (does not overwrite) a record already there. So a copy that stopped half-way
//! is finished by running it again with `--force`. At the end the counts of both stores
//! are compared, and a sample of records read back from the target.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{ConversationId, Limit, Record, RecordKind, ScanCursor, Sealer, Store, UserId};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::cli::CliError;
use crate::keyfile;
use crate::store_url::StoreUrl;

/// How many records of each kind are read back from the target at the end.
const SAMPLES_PER_KIND: u64 = 20;
/// How many imports run at once.
const IMPORTS_IN_FLIGHT: usize = 16;
/// How often progress is written when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The options of `copy`.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// The store to copy from (any store URL).
    #[arg(long, hide_env_values = true)]
    pub from: StoreUrl,
    /// The store to copy into; its schema is created if needed.
    #[arg(long, hide_env_values = true)]
    pub to: StoreUrl,
    /// Copy into a target that already holds data: records already there (same id) are
    /// kept and the rest copied, which is how an interrupted copy is finished.
    #[arg(long)]
    pub force: bool,
    /// The master key file the source's API keys are sealed with, to check it before
    /// copying (CHAT_MASTER_KEY works too). By default an embedded source's own key file.
    #[arg(long, env = "CHAT_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// How many records are read and written per batch.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
}

/// Runs `copy`.
///
/// # Errors
///
/// [`CliError`] when a store cannot be opened or fails, the master key does not open the
/// source's sealed keys, the target holds data and `--force` was not given, or the check at
/// the end finds a difference.
pub async fn run(args: CopyArgs) -> Result<(), CliError> {
    if args.from == args.to {
        return Err(CliError::Input(format!(
            "--from and --to are the same store ({})",
            args.from
        )));
    }
    let batch = Limit::new(args.batch).unwrap_or_default();
    let source = args.from.open().await?;
    check_master_key(&args, &*source).await?;
    let target = args.to.open().await?;
    let target_was_empty = is_empty(&*target).await?;
    if !target_was_empty && !args.force {
        return Err(CliError::Refused(format!(
            "the target {} already holds data; run again with --force to copy into it, keeping what is there",
            args.to
        )));
    }

    let totals = count_all(&*source, batch).await?;
    let total: u64 = totals.iter().sum();
    eprintln!("copying {total} records from {} to {}", args.from, args.to);
    let mut progress = Progress::new(total);
    let mut samples: Vec<Record> = Vec::new();
    let (mut added, mut kept) = (0u64, 0u64);
    for (kind, kind_total) in RecordKind::ALL.into_iter().zip(totals.iter().copied()) {
        let every = (kind_total / SAMPLES_PER_KIND).max(1);
        let mut seen = 0u64;
        let mut cursor = ScanCursor::start(kind);
        loop {
            let page = source.scan(cursor, batch).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            // Records of one kind do not depend on each other, so a page is imported a
            // few at a time: stores that flush per write (sled) share their flushes.
            let mut imports = JoinSet::new();
            let mut page = page.into_iter();
            loop {
                while imports.len() < IMPORTS_IN_FLIGHT {
                    let Some(record) = page.next() else { break };
                    let target = Arc::clone(&target);
                    imports.spawn(async move {
                        let added = target.import(&record).await;
                        (added, record)
                    });
                }
                let Some(done) = imports.join_next().await else {
                    break;
                };
                let (outcome, record) =
                    done.map_err(|e| chat_core::Error::backend(target.backend(), e))?;
                if outcome? {
                    added += 1;
                } else {
                    kept += 1;
                }
                if seen % every == 0 {
                    samples.push(record);
                }
                seen += 1;
                progress.advance(kind);
            }
        }
    }
    progress.finish();

    let after = count_all(&*target, batch).await?;
    verify_counts(&totals, &after, target_was_empty)?;
    for record in &samples {
        verify_record(&*target, record).await?;
    }
    println!(
        "copied {total} records ({added} added, {kept} already there and kept): {}",
        describe(&totals)
    );
    println!(
        "verified: the target's counts match ({}) and {} sampled records read back equal",
        describe(&after),
        samples.len()
    );
    Ok(())
}

/// Checks, before anything is copied, that the master key the operator holds opens a
/// sealed key of the source: the target will be served with it, since sealed keys are
/// copied as they are. The key is only used to open one key here, never shown.
async fn check_master_key(args: &CopyArgs, source: &dyn Store) -> Result<(), CliError> {
    let env_key = std::env::var("CHAT_MASTER_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let default_file = args.from.default_key_file().filter(|path| path.exists());
    let where_kept = match (&env_key, &args.master_key_file, &default_file) {
        (Some(_), _, _) => "CHAT_MASTER_KEY".to_owned(),
        (None, Some(path), _) | (None, None, Some(path)) => path.display().to_string(),
        (None, None, None) => match args.from.default_key_file() {
            Some(path) => format!("an embedded source keeps it in {}", path.display()),
            None => String::new(),
        },
    };
    eprintln!(
        "note: API keys are copied sealed, as they are: serve the target with the source's master key{}",
        if where_kept.is_empty() {
            String::new()
        } else {
            format!(" ({where_kept})")
        }
    );
    let file = args.master_key_file.as_deref().or(default_file.as_deref());
    let key = match (&env_key, file) {
        (None, None) => None,
        (env, file) => Some(load_key(&args.from, env.as_deref(), file)?),
    };
    let first = source.scan(ScanCursor::Configs(None), one()).await?;
    let Some(Record::Config(config)) = first.into_iter().next() else {
        return Ok(());
    };
    let Some(key) = key else {
        eprintln!(
            "warning: no master key given (CHAT_MASTER_KEY or --master-key-file): not checked that it opens the source's API keys"
        );
        return Ok(());
    };
    let version = config.sealed_key.0.first().copied().unwrap_or(1);
    Sealer::new(version, key)
        .open(config.user_id, config.provider_id, &config.sealed_key)
        .map_err(|_| CliError::WrongKey {
            from: where_kept.clone(),
        })?;
    eprintln!("checked: the master key ({where_kept}) opens the source's sealed API keys");
    Ok(())
}

fn load_key(
    store: &StoreUrl,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<chat_core::MasterKey, CliError> {
    // With a file named, `load` only reads it: it never creates a key for a copy.
    let (key, _) = keyfile::load(store, env, if env.is_some() { None } else { file })?;
    Ok(key)
}

/// Whether the store holds no record of any kind.
async fn is_empty(store: &dyn Store) -> Result<bool, CliError> {
    for kind in RecordKind::ALL {
        if !store.scan(ScanCursor::start(kind), one()).await?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How many records of each kind (in [`RecordKind::ALL`]'s order) the store holds, counted
/// a page at a time.
async fn count_all(store: &dyn Store, batch: Limit) -> Result<Vec<u64>, CliError> {
    let mut counts = Vec::with_capacity(RecordKind::ALL.len());
    for kind in RecordKind::ALL {
        let mut n = 0u64;
        let mut cursor = ScanCursor::start(kind);
        loop {
            let page = store.scan(cursor, batch).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            n += page.len() as u64;
        }
        counts.push(n);
    }
    Ok(counts)
}

fn describe(counts: &[u64]) -> String {
    RecordKind::ALL
        .iter()
        .zip(counts)
        .map(|(kind, n)| format!("{n} {}", kind.plural()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An empty target must end with exactly the source's counts; one that held data, with
/// at least them.
fn verify_counts(source: &[u64], target: &[u64], exact: bool) -> Result<(), CliError> {
    for ((kind, s), t) in RecordKind::ALL.iter().zip(source).zip(target) {
        if (exact && s != t) || t < s {
            return Err(CliError::Verify(format!(
                "the source holds {s} {} but the target {t}",
                kind.plural()
            )));
        }
    }
    Ok(())
}

/// Reads `record` back from the target by its key and compares it whole.
async fn verify_record(target: &dyn Store, record: &Record) -> Result<(), CliError> {
    let found = match record {
        Record::User(a) => target
            .scan(
                ScanCursor::Users(just_before(a.user.id.to_bytes()).map(UserId::from_bytes)),
                one(),
            )
            .await?
            .into_iter()
            .next(),
        Record::Session(s) => target
            .get_session(&s.token_hash)
            .await?
            .map(Record::Session),
        Record::Provider(p) => target.get_provider(p.id).await?.map(Record::Provider),
        Record::Config(c) => target
            .get_config(c.user_id, c.provider_id)
            .await?
            .map(Record::Config),
        Record::Conversation { conversation, .. } => target
            .scan(
                ScanCursor::Conversations(
                    just_before(conversation.id.to_bytes()).map(ConversationId::from_bytes),
                ),
                one(),
            )
            .await?
            .into_iter()
            .next(),
        Record::Message(m) => target.get_message(m.id).await?.map(Record::Message),
        Record::Attachment(a) => target.get_attachment(a.id).await?.map(Record::Attachment),
    };
    if found.as_ref() == Some(record) {
        Ok(())
    } else {
        Err(CliError::Verify(format!(
            "a sampled {} reads back differently from the target",
            kind_name(record.kind())
        )))
    }
}

fn kind_name(kind: RecordKind) -> &'static str {
    let plural = kind.plural();
    &plural[..plural.len() - 1]
}

/// Progress on standard error: a bar on a terminal, a plain line now and then otherwise.
enum Progress {
    Bar(ProgressBar),
    Lines {
        done: u64,
        total: u64,
        started: Instant,
        last: Instant,
    },
}

impl Progress {
    fn new(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>13} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            Progress::Bar(bar)
        } else {
            let now = Instant::now();
            Progress::Lines {
                done: 0,
                total,
                started: now,
                last: now,
            }
        }
    }

    fn advance(&mut self, kind: RecordKind) {
        match self {
            Progress::Bar(bar) => {
                if bar.message() != kind.plural() {
                    bar.set_message(kind.plural());
                }
                bar.inc(1);
            }
            Progress::Lines {
                done,
                total,
                started,
                last,
            } => {
                *done += 1;
                if last.elapsed() >= PLAIN_PROGRESS_EVERY {
                    *last = Instant::now();
                    let rate = *done as f64 / started.elapsed().as_secs_f64().max(0.001);
                    let eta = (*total - *done) as f64 / rate.max(0.001);
                    eprintln!(
                        "copy: {done}/{total} records ({}), {rate:.0}/s, about {eta:.0}s left",
                        kind.plural()
                    );
                }
            }
        }
    }

    fn finish(&self) {
        match self {
            Progress::Bar(bar) => bar.finish_with_message("done"),
            Progress::Lines {
                done,
                total,
                started,
                ..
            } => eprintln!(
                "copy: {done}/{total} records in {:.1}s",
                started.elapsed().as_secs_f64()
            ),
        }
    }
}

/// A page of one record.
fn one() -> Limit {
    Limit::new(1).unwrap_or_default()
}

/// The id right before `id` in byte order, for a scan that starts at `id`; `None` (the
/// start) for the lowest id.
fn just_before(id: [u8; 16]) -> Option<[u8; 16]> {
    u128::from_be_bytes(id)
        .checked_sub(1)
        .map(u128::to_be_bytes)
}
