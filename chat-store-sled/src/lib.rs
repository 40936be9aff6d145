#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod appends;
mod commit;
mod error;
mod health;
mod keys;
mod quiet;
mod records;
mod trees;

#[doc(hidden)]
pub mod bench_support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Limit, LlmProvider, Message,
    MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result, ScanCursor, SealedKey,
    Session, Store, TokenHash, User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};

use crate::appends::Appends;
use crate::commit::{Flusher, GroupCommit};
use crate::error::StoreError;
use crate::health::{DEFAULT_MIN_FREE_SPACE, Health};
use crate::quiet::Writes;
use crate::trees::Trees;

pub use crate::error::OpenError;

/// The version of the key layout and record encoding this build writes, stored in the
/// database. A database of another version is refused at open.
pub const FORMAT_VERSION: u32 = 1;

/// The key under which the format version is kept in the `meta` tree.
const FORMAT_KEY: &[u8] = b"format_version";

/// How to open a [`SledStore`].
///
/// ```no_run
/// use chat_store_sled::SledConfig;
/// let store = SledConfig::new("data/chat")
///     .cache_capacity(256 * 1024 * 1024)
///     .open()?;
/// # Ok::<(), chat_store_sled::OpenError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SledConfig {
    path: PathBuf,
    cache_capacity: Option<u64>,
    sync_data: bool,
    min_free_space: u64,
}

impl SledConfig {
    /// A store in the directory `path` (created if missing), with defaults: sled's page
    /// cache of 1 GiB at most, `fdatasync` after every flush, and writes refused while less
    /// than 64 MiB is free on the disk.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            cache_capacity: None,
            sync_data: true,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
        }
    }

    /// Below this many free bytes on the store's file system, writes are refused with
    /// [`Unavailable::OutOfSpace`](chat_core::Unavailable::OutOfSpace) and change nothing;
    /// reads go on, and writes resume by themselves once space is freed. 0 turns the check
    /// off.
    ///
    /// The reserve is what keeps sled from meeting a full disk, which it cannot survive in
    /// the same process (the crate README says why); keep it well above the largest write.
    #[must_use]
    pub fn min_free_space(mut self, bytes: u64) -> Self {
        self.min_free_space = bytes;
        self
    }

    /// The most memory sled's page cache may use, in bytes.
    #[must_use]
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = Some(bytes);
        self
    }

    /// Whether each group flush ends with `fdatasync` of the database file (the default).
    ///
    /// Without it, an `Ok` still survives the process being killed, but on Linux sled's
    /// own flush (`sync_file_range`) does not promise that the data survives a power cut.
    #[must_use]
    pub fn sync_data(mut self, on: bool) -> Self {
        self.sync_data = on;
        self
    }

    /// Opens (or creates) the store. Blocks while sled reads its files.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the path cannot be used, is not a chat-store sled database, is
    /// in use, or holds a format version this build does not read.
    pub fn open(self) -> Result<SledStore, OpenError> {
        let path = self.path.clone();
        check_path(&path)?;
        let db = open_db(&self)?;
        let sled_err = |source| OpenError::Sled {
            path: path.clone(),
            source,
        };
        let fresh = match format_version(&db).map_err(sled_err)? {
            Some(Ok(version)) if version == FORMAT_VERSION => false,
            Some(Ok(version)) => {
                return Err(OpenError::UnsupportedVersion {
                    path,
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            Some(Err(())) => {
                return Err(OpenError::NotADatabase {
                    path,
                    source: Some("the format version is malformed".into()),
                });
            }
            // Nothing stored at all: a new database, or one whose creation was cut short
            // before its version was written.
            None if is_empty(&db).map_err(sled_err)? => true,
            None => {
                return Err(OpenError::NotADatabase {
                    path,
                    source: Some("a sled database without a chat-store format version".into()),
                });
            }
        };
        let trees = Trees::open(db.clone()).map_err(sled_err)?;
        if fresh {
            trees
                .meta
                .insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
                .map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
        }
        trees
            .finish_deletes()
            .map_err(|e| OpenError::NotADatabase {
                path: path.clone(),
                source: Some(Box::new(e)),
            })?;
        db.flush().map_err(sled_err)?;
        let sync_file = if self.sync_data {
            let file = File::open(path.join("db")).map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?;
            Some(file)
        } else {
            None
        };
        let commit = GroupCommit::new(Flusher {
            db,
            sync_file,
            gate: Mutex::new(()),
            flushes: 0.into(),
            #[cfg(test)]
            fail: false.into(),
            #[cfg(test)]
            hook: Default::default(),
        });
        let health = Health::new(self.path, self.min_free_space);
        Ok(SledStore {
            inner: Arc::new(Inner {
                trees,
                commit,
                health,
                writes: Writes::default(),
                appends: Appends::default(),
            }),
        })
    }
}

/// The stored format version: `None` if there is none, `Some(Err(()))` if it is not four
/// bytes. Creates no tree.
fn format_version(db: &sled::Db) -> sled::Result<Option<Result<u32, ()>>> {
    let names = db.tree_names();
    if !names
        .iter()
        .any(|name| name.as_ref() == keys::tree::META.as_bytes())
    {
        return Ok(None);
    }
    let version = db.open_tree(keys::tree::META)?.get(FORMAT_KEY)?;
    Ok(version.map(|v| {
        <[u8; 4]>::try_from(v.as_ref())
            .map(u32::from_be_bytes)
            .map_err(drop)
    }))
}

/// Whether no tree of the database holds anything.
fn is_empty(db: &sled::Db) -> sled::Result<bool> {
    for name in db.tree_names() {
        if !db.open_tree(name)?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses paths that cannot be, or plainly are not, a sled database, before sled creates
/// anything there.
fn check_path(path: &Path) -> Result<(), OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(OpenError::NotADatabase {
            path: path.to_path_buf(),
            source: Some("not a directory".into()),
        }),
        Ok(_) => {
            let mut entries = std::fs::read_dir(path).map_err(io)?;
            let empty = entries.next().is_none();
            let has_sled_files = path.join("db").is_file() && path.join("conf").is_file();
            if empty || has_sled_files {
                Ok(())
            } else {
                Err(OpenError::NotADatabase {
                    path: path.to_path_buf(),
                    source: Some("the directory has files but no sled database".into()),
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// How long an open waits for sled's lock: sled 0.34 releases it from a background thread
/// after the last handle of a database is dropped, so a store closed and opened again at
/// once (a restart inside one process, an operator command after a test) can find it still
/// held for a moment. Another process holding it is still refused, after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn open_db(config: &SledConfig) -> Result<sled::Db, OpenError> {
    let started = std::time::Instant::now();
    loop {
        match open_db_once(config) {
            Err(OpenError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn open_db_once(config: &SledConfig) -> Result<sled::Db, OpenError> {
    let path = config.path.clone();
    // No periodic flush of sled's own: every write is flushed by the group commit before it
    // is answered, and a background flush would meet a full disk where no caller hears of
    // it, wedging sled (see `health`).
    let mut sled_config = sled::Config::new().path(&path).flush_every_ms(None);
    if let Some(bytes) = config.cache_capacity {
        sled_config = sled_config.cache_capacity(bytes);
    }
    // sled 0.34 can panic on files it cannot parse; that is a bad database, not a crash.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sled_config.open()));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
            Err(OpenError::Locked { path })
        }
        Ok(Err(sled::Error::Io(source))) => Err(OpenError::Io { path, source }),
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_)))) => {
            Err(OpenError::NotADatabase {
                path,
                source: Some(Box::new(e)),
            })
        }
        Ok(Err(source)) => Err(OpenError::Sled { path, source }),
        Err(_) => Err(OpenError::NotADatabase {
            path,
            source: Some("sled could not read the files".into()),
        }),
    }
}

/// The embedded [`Store`] on sled. Cheap to clone; clones share one database.
///
/// Every call runs on tokio's blocking pool, so it must be made inside a tokio runtime.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    trees: Trees,
    commit: GroupCommit,
    health: Health,
    writes: Writes,
    appends: Appends,
}

/// What the result of a write needs before it is answered.
enum Written<T> {
    /// Nothing more: sled failed (and if it failed to write, the store is latched).
    Answer(Result<T>),
    /// A group flush that covers it. Answers that made no change (not found, a conflict)
    /// are flushed too: they may rest on another writer's change that is not yet on disk.
    Flush(Result<T>),
}

/// Sorts a write's result (see [`Written`]), latching the store if sled failed to write
/// its log.
fn written<T>(health: &Health, result: Result<T>) -> Written<T> {
    match result {
        Err(e @ chat_core::Error::Backend { .. }) => match sled_io_failure(&e) {
            Some(io) => Written::Answer(Err(health.fail(io))),
            None => Written::Answer(Err(e)),
        },
        other => Written::Flush(other),
    }
}

/// The I/O failure of sled inside `error`, if that is what it is.
fn sled_io_failure(error: &chat_core::Error) -> Option<&StoreError> {
    match error {
        chat_core::Error::Backend { source, .. } => match source.downcast_ref() {
            Some(e @ StoreError::Sled(sled::Error::Io(_))) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (or creates) the store in the directory `path` with the defaults of
    /// [`SledConfig::new`].
    ///
    /// # Errors
    ///
    /// See [`SledConfig::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        SledConfig::new(path).open()
    }

    /// Changes the free-space reserve of [`SledConfig::min_free_space`] while the store is
    /// open.
    pub fn set_min_free_space(&self, bytes: u64) {
        self.inner.health.set_min_free_space(bytes);
    }

    /// Runs `op` on a blocking thread: sled's calls may wait on disk.
    async fn blocking<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        self.inner.health.check_read()?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner.trees))
            .await
            .map_err(StoreError::Task)?
    }

    /// Runs a read of hot keys (a session, a conversation, a page) on the caller's thread
    /// while no write is in flight, else as [`blocking`](Self::blocking): see [`quiet`].
    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        if self.inner.writes.quiet() {
            self.inner.health.check_read()?;
            return op(&self.inner.trees);
        }
        self.blocking(op).await
    }

    /// Runs a write, then waits for a group flush that covers it.
    ///
    /// Answers that a write made no change (not found, a conflict) are flushed too: they
    /// may rest on another writer's change that is not yet on disk.
    ///
    /// The write is refused before it starts while the disk is below the reserve, and a
    /// failed write to sled's log latches the store (see [`health`]).
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        self.inner.health.check_write()?;
        let _in_flight = self.inner.writes.begin();
        let inner = Arc::clone(&self.inner);
        let (result, flush) =
            tokio::task::spawn_blocking(move || match written(&inner.health, op(&inner.trees)) {
                Written::Flush(result) => (result, Some(inner.commit.flush_after_commit())),
                Written::Answer(result) => (result, None),
            })
            .await
            .map_err(StoreError::Task)?;
        if let Some(flush) = flush {
            if let Err(e) = self.inner.commit.wait(flush).await {
                return Err(self.inner.health.fail(&e));
            }
        }
        result
    }
}

#[async_trait]
impl Store for SledStore {
    fn backend(&self) -> &'static str {
        "sled"
    }

    async fn ping(&self) -> Result<()> {
        // A reserve too low for the next write is as unready as a failed engine.
        self.inner.health.check_write()?;
        self.blocking(|t| {
            t.meta
                .get(FORMAT_KEY)
                .map_err(|e| StoreError::Sled(e).into())
                .map(drop)
        })
        .await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let user = user.clone();
        self.write(move |t| t.create_user(&user)).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        self.blocking(move |t| t.get_user(id)).await
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let username = username.to_owned();
        self.blocking(move |t| t.get_user_by_username(&username))
            .await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.write(move |t| t.create_session(&session)).await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let token_hash = *token_hash;
        self.read(move |t| t.get_session(&token_hash)).await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        let token_hash = *token_hash;
        self.write(move |t| t.delete_session(&token_hash)).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write(move |t| t.delete_expired_sessions(now)).await
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        let conversation = conversation.clone();
        self.write(move |t| t.create_conversation(&conversation))
            .await
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.read(move |t| t.get_conversation(id)).await
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.blocking(move |t| t.list_conversations(user, before, limit.get()))
            .await
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let title = title.to_owned();
        self.write(move |t| t.rename_conversation(id, &title, at))
            .await
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        self.write(move |t| t.delete_conversation(id)).await
    }

    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        appends::append(&self.inner, draft).await
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        self.blocking(move |t| t.get_message(id)).await
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        self.read(move |t| t.list_messages(conversation, order, limit.get()))
            .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        self.write(move |t| t.delete_message(id, at)).await
    }

    async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        let attachment = attachment.clone();
        self.write(move |t| t.create_attachment(&attachment)).await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        self.blocking(move |t| t.get_attachment(id)).await
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        self.blocking(move |t| t.list_attachments(message, after, limit.get()))
            .await
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        self.write(move |t| t.delete_attachment(id)).await
    }

    async fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        let provider = provider.clone();
        self.write(move |t| t.create_provider(&provider)).await
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        self.blocking(move |t| t.get_provider(id)).await
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        self.blocking(move |t| t.list_providers(user, after, limit.get()))
            .await
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        self.write(move |t| t.delete_provider(id)).await
    }

    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        let config = config.clone();
        self.write(move |t| t.create_config(&config)).await
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        self.blocking(move |t| t.get_config(user, provider)).await
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        self.write(move |t| {
            t.update_config(user, provider, &sealed_key, api_key_hint.as_deref(), at)
        })
        .await
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        self.write(move |t| t.delete_config(user, provider)).await
    }

    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>> {
        self.blocking(move |t| t.scan(from, limit.get())).await
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        match record.clone() {
            Record::User(account) => self.write(move |t| t.import_user(&account)).await,
            Record::Conversation {
                conversation,
                last_seq,
            } => {
                self.write(move |t| t.import_conversation(&conversation, last_seq))
                    .await
            }
            Record::Message(message) => self.write(move |t| t.import_message(&message)).await,
            other => chat_core::import_plain(self, &other).await,
        }
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        self.write(move |t| t.set_user_disabled(user, disabled))
            .await
    }

    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.blocking(move |t| t.list_idle_conversations(updated_before, after, limit.get()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use chat_core::{Entity, Error, MessageId, PasswordHash, Role, time};

    use super::*;

    pub(crate) fn draft(c: &Conversation) -> MessageDraft {
        MessageDraft {
            id: MessageId::new(),
            conversation_id: c.id,
            user_id: c.user_id,
            role: Role::User,
            content: "hi".into(),
            metadata: None,
            created_at: time::now(),
        }
    }

    /// 32 tasks appending at once share flushes, and every append is still answered only
    /// after a flush that began after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_flushes() {
        const TASKS: usize = 32;
        const EACH: usize = 10;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let user = UserId::new();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let store = store.clone();
            let now = time::now();
            let c = Conversation {
                id: ConversationId::new(),
                user_id: user,
                title: "shared".into(),
                created_at: now,
                updated_at: now,
                message_count: 0,
            };
            store.create_conversation(&c).await.unwrap();
            tasks.push(tokio::spawn(async move {
                for _ in 0..EACH {
                    store.append_message(draft(&c)).await.unwrap();
                }
            }));
        }
        let before = store.inner.commit.flushes();
        for task in tasks {
            task.await.unwrap();
        }
        let flushes = store.inner.commit.flushes() - before;
        let appends = (TASKS * EACH) as u64;
        assert!(
            flushes < appends / 2,
            "{appends} concurrent appends took {flushes} flushes"
        );
    }

    pub(crate) fn conversation(user: UserId) -> Conversation {
        let now = time::now();
        Conversation {
            id: ConversationId::new(),
            user_id: user,
            title: "full".into(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        }
    }

    fn unavailable_reason(result: Result<impl std::fmt::Debug>) -> chat_core::Unavailable {
        match result {
            Err(Error::Unavailable { reason, .. }) => reason,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    /// Below the free-space reserve a write is refused before it changes anything, reads go
    /// on, and writes resume as soon as there is room again, without reopening.
    #[tokio::test]
    async fn writes_wait_for_free_space_and_reads_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let c = conversation(UserId::new());
        store.create_conversation(&c).await.unwrap();
        store.append_message(draft(&c)).await.unwrap();

        // No file system has this much free, so every write is below the reserve.
        store.set_min_free_space(u64::MAX);
        assert_eq!(
            unavailable_reason(store.append_message(draft(&c)).await),
            chat_core::Unavailable::OutOfSpace
        );
        assert_eq!(
            unavailable_reason(store.create_conversation(&conversation(c.user_id)).await),
            chat_core::Unavailable::OutOfSpace
        );
        assert_eq!(
            unavailable_reason(store.ping().await),
            chat_core::Unavailable::OutOfSpace
        );
        let read = store.get_conversation(c.id).await.unwrap().unwrap();
        assert_eq!(read.message_count, 1, "the refused append changed nothing");

        store.set_min_free_space(0);
        store.ping().await.unwrap();
        let next = store.append_message(draft(&c)).await.unwrap();
        assert_eq!(next.seq, 2, "the refused append took no seq");
    }

    /// A flush that fails is never acknowledged, and it latches the store: every later
    /// call is refused at once (sled would hang on the next write), reads included, since
    /// sled's memory may hold what its log never got.
    #[tokio::test]
    async fn a_failed_flush_is_not_acknowledged_and_latches_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let c = conversation(UserId::new());
        store.create_conversation(&c).await.unwrap();

        store.inner.commit.fail_flushes(true);
        let refused = store.append_message(draft(&c)).await;
        assert_eq!(unavailable_reason(refused), chat_core::Unavailable::Failed);

        store.inner.commit.fail_flushes(false);
        assert_eq!(
            unavailable_reason(store.append_message(draft(&c)).await),
            chat_core::Unavailable::Failed
        );
        assert_eq!(
            unavailable_reason(store.get_conversation(c.id).await),
            chat_core::Unavailable::Failed
        );
        assert_eq!(
            unavailable_reason(store.ping().await),
            chat_core::Unavailable::Failed
        );
    }

    /// A delete cut short by a crash after its first transaction: the conversation and all
    /// it held are gone for readers at once, its ids can be used again, and the next open
    /// removes the leftovers.
    #[tokio::test]
    async fn a_deleted_conversation_is_gone_before_its_purge_and_purged_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let user = User {
            id: UserId::new(),
            username: "deleter".into(),
            email: None,
            password_hash: PasswordHash("x".into()),
            created_at: time::now(),
        };
        let now = time::now();
        let c = Conversation {
            id: ConversationId::new(),
            user_id: user.id,
            title: "doomed".into(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        let other = Conversation {
            id: ConversationId::new(),
            title: "other".into(),
            ..c.clone()
        };
        let (kept, reused) = {
            let store = SledStore::open(dir.path()).unwrap();
            store.create_user(&user).await.unwrap();
            store.create_conversation(&c).await.unwrap();
            store.create_conversation(&other).await.unwrap();
            let m1 = store.append_message(draft(&c)).await.unwrap();
            let m2 = store.append_message(draft(&c)).await.unwrap();
            let a = Attachment {
                id: AttachmentId::new(),
                message_id: m1.id,
                conversation_id: c.id,
                user_id: user.id,
                file_type: "pdf".into(),
                file_path: "x".into(),
                created_at: time::now(),
            };
            store.create_attachment(&a).await.unwrap();
            // Only the first step of delete_conversation, as if the process died after it.
            assert!(store.inner.trees.mark_deleted(c.id.to_bytes()).unwrap());
            let flush = store.inner.commit.flush_after_commit();
            store.inner.commit.wait(flush).await.unwrap();

            assert_eq!(store.get_conversation(c.id).await.unwrap(), None);
            assert_eq!(store.get_message(m1.id).await.unwrap(), None);
            assert_eq!(store.get_attachment(a.id).await.unwrap(), None);
            let all = MessageOrder::default();
            assert!(
                store
                    .list_messages(c.id, all, Limit::MAX)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                store
                    .list_attachments(m1.id, None, Limit::MAX)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(!store.delete_message(m2.id, time::now()).await.unwrap());
            assert!(!store.delete_attachment(a.id).await.unwrap());
            assert!(!store.delete_conversation(c.id).await.unwrap());
            assert!(matches!(
                store.append_message(draft(&c)).await,
                Err(Error::NotFound(Entity::Conversation))
            ));
            // A message id of the deleted conversation may be used again at once.
            let mut again = draft(&other);
            again.id = m2.id;
            let reused = store.append_message(again).await.unwrap();
            assert_eq!(
                store.get_message(m2.id).await.unwrap(),
                Some(reused.clone())
            );
            (m1, reused)
        };
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.inner.trees.deleted_is_empty());
        assert_eq!(store.get_message(kept.id).await.unwrap(), None);
        assert_eq!(store.get_message(reused.id).await.unwrap(), Some(reused));
        // The conversation's id is free again too.
        store.create_conversation(&c).await.unwrap();
        assert!(
            store
                .list_messages(c.id, MessageOrder::default(), Limit::MAX)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
