//! Key encodings. Every key is fixed-width big-endian bytes, so sled's byte order is the
//! order the store lists things in (see the README for the whole layout).

use chrono::{DateTime, Utc};

/// Names of the trees, in one place so a typo cannot split a tree in two.
pub(crate) mod tree {
    pub const META: &str = "meta";
    pub const USERS: &str = "users";
    pub const USERNAMES: &str = "usernames";
    pub const SESSIONS: &str = "sessions";
    pub const SESSION_IDS: &str = "session_ids";
    pub const SESSION_EXPIRY: &str = "session_expiry";
    pub const CONVERSATIONS: &str = "conversations";
    pub const USER_CONVERSATIONS: &str = "user_conversations";
    pub const DELETED: &str = "deleted_conversations";
    pub const MESSAGES: &str = "messages";
    pub const MESSAGE_IDS: &str = "message_ids";
    pub const ATTACHMENTS: &str = "attachments";
    pub const ATTACHMENT_IDS: &str = "attachment_ids";
    pub const CONVERSATION_ATTACHMENTS: &str = "conversation_attachments";
    pub const PROVIDERS: &str = "providers";
    pub const PROVIDER_NAMES: &str = "provider_names";
    pub const PROVIDER_OWNERS: &str = "provider_owners";
    pub const CONFIGS: &str = "configs";
    pub const PROVIDER_CONFIGS: &str = "provider_configs";
    pub const CONFIG_IDS: &str = "config_ids";
    /// Ids of disabled users. A tree of its own rather than a field of the user record, so
    /// databases written before it read unchanged (no tree: nobody is disabled).
    pub const DISABLED_USERS: &str = "disabled_users";
}

pub(crate) type Id = [u8; 16];

pub(crate) const MIN_ID: Id = [0; 16];
pub(crate) const MAX_ID: Id = [0xff; 16];

/// The id right after `id` in byte order, for "above this cursor" ranges; `None` after the
/// last.
pub(crate) fn next_id(id: Id) -> Option<Id> {
    u128::from_be_bytes(id)
        .checked_add(1)
        .map(u128::to_be_bytes)
}

/// Two ids side by side: (parent, child) keys of the index trees.
pub(crate) fn pair(a: Id, b: Id) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(&a);
    key[16..].copy_from_slice(&b);
    key
}

/// The second half of a [`pair`] key.
pub(crate) fn second(key: &[u8]) -> Option<Id> {
    key.get(16..32)?.try_into().ok()
}

/// The first half of a [`pair`] key.
pub(crate) fn first(key: &[u8]) -> Option<Id> {
    key.get(..16)?.try_into().ok()
}

/// A message's key: conversation id, then `seq` big-endian, so a page is one range scan.
pub(crate) fn message(conversation: Id, seq: u64) -> [u8; 24] {
    let mut key = [0; 24];
    key[..16].copy_from_slice(&conversation);
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The `seq` of a [`message`] key.
pub(crate) fn message_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(16..24)?.try_into().ok()?))
}

/// The prefix of a provider owner's keys: `0` for the shared set, `1 ‖ user id` for a user.
pub(crate) fn owner(owner: Option<Id>) -> Vec<u8> {
    match owner {
        None => vec![0],
        Some(user) => {
            let mut key = Vec::with_capacity(33);
            key.push(1);
            key.extend_from_slice(&user);
            key
        }
    }
}

/// `prefix ‖ suffix`.
pub(crate) fn join(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + suffix.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(suffix);
    key
}

/// A timestamp that sorts as bytes in time order: seconds with the sign bit flipped, then
/// nanoseconds, both big-endian.
pub(crate) fn time(t: DateTime<Utc>) -> [u8; 12] {
    let mut key = [0; 12];
    let secs = (t.timestamp() as u64) ^ (1 << 63);
    key[..8].copy_from_slice(&secs.to_be_bytes());
    key[8..].copy_from_slice(&t.timestamp_subsec_nanos().to_be_bytes());
    key
}

/// A session-expiry key: when it expires, then the token hash.
pub(crate) fn expiry(at: DateTime<Utc>, token: &[u8; 32]) -> [u8; 44] {
    let mut key = [0; 44];
    key[..12].copy_from_slice(&time(at));
    key[12..].copy_from_slice(token);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_times() {
        let times = [
            DateTime::from_timestamp(-5_000_000_000, 1).unwrap(),
            DateTime::from_timestamp(-1, 999_999_999).unwrap(),
            DateTime::from_timestamp(0, 0).unwrap(),
            DateTime::from_timestamp(0, 1).unwrap(),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        ];
        let keys: Vec<_> = times.iter().map(|t| time(*t)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn message_keys_sort_by_seq_within_a_conversation() {
        let c = [7; 16];
        assert!(message(c, 255) < message(c, 256));
        assert_eq!(message_seq(&message(c, 1 << 40)), Some(1 << 40));
    }
}
