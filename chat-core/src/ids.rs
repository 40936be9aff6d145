//! Typed identifiers.
//!
//! Every entity has its own id type so that a message id can never be passed where a
//! conversation id is expected. All of them wrap a UUIDv7: the leading 48 bits are the
//! creation time in milliseconds, so ids sort by creation time, which the stores use as the
//! order of conversations, attachments and providers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The error of parsing an id that is not a UUID in its lower-case hyphenated 36-character
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID in the lower-case hyphenated form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
pub struct InvalidId;

/// Parses the lower-case hyphenated 36-character form of a UUID, and no other spelling.
///
/// `uuid` also accepts upper case and the simple, braced and URN forms; the API promises
/// one spelling, the one ids are written in, so that an id is a stable string that clients
/// can compare byte for byte, and a path or link built from a parsed id is the path the
/// client sent.
fn parse_hyphenated(s: &str) -> Result<Uuid, InvalidId> {
    let bytes = s.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        });
    if !well_formed {
        return Err(InvalidId);
    }
    Uuid::try_parse(s).map_err(|_| InvalidId)
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id for an object created now (UUIDv7, monotonic within this process).
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID, e.g. one read back from a store.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The 16 bytes of the UUID, big-endian, so that byte order is creation order.
            #[must_use]
            pub const fn to_bytes(self) -> [u8; 16] {
                *self.0.as_bytes()
            }

            /// The id whose [`to_bytes`](Self::to_bytes) gave `bytes`.
            #[must_use]
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hyphenated(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    Uuid::deserialize(deserializer).map(Self)
                }
            }
        }
    };
}

typed_id!(
    /// Identifies a [`User`](crate::User).
    UserId
);
typed_id!(
    /// Identifies a login [`Session`](crate::Session).
    SessionId
);
typed_id!(
    /// Identifies a [`Conversation`](crate::Conversation).
    ConversationId
);
typed_id!(
    /// Identifies a [`Message`](crate::Message).
    MessageId
);
typed_id!(
    /// Identifies an [`Attachment`](crate::Attachment).
    AttachmentId
);
typed_id!(
    /// Identifies an [`LlmProvider`](crate::LlmProvider).
    ProviderId
);
typed_id!(
    /// Identifies a [`UserLlmConfig`](crate::UserLlmConfig).
    ConfigId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_hyphenated_form() {
        let id = ConversationId::new();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<ConversationId>(), Ok(id));
        // Upper case is another spelling of the same UUID, and refused like the others.
        assert_eq!(
            text.to_uppercase().parse::<ConversationId>(),
            Err(InvalidId)
        );
        let simple = text.replace('-', "");
        assert_eq!(simple.parse::<ConversationId>(), Err(InvalidId));
        assert_eq!(
            format!("{{{text}}}").parse::<ConversationId>(),
            Err(InvalidId)
        );
        assert_eq!(
            format!("urn:uuid:{text}").parse::<ConversationId>(),
            Err(InvalidId)
        );
        assert_eq!("".parse::<ConversationId>(), Err(InvalidId));
        assert_eq!(
            "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".parse::<ConversationId>(),
            Err(InvalidId)
        );
        assert_eq!(
            "1234567-89ab-cdef-0123-456789abcdef0".parse::<ConversationId>(),
            Err(InvalidId)
        );
    }

    #[test]
    fn refuses_any_upper_case_digit() {
        let text = "0189abcd-ef01-7abc-8def-0123456789ab";
        assert!(text.parse::<MessageId>().is_ok());
        // One upper-case letter anywhere is enough to refuse the id.
        for (i, c) in text.char_indices().filter(|(_, c)| c.is_ascii_alphabetic()) {
            let mut spelled = text.to_owned();
            spelled.replace_range(i..=i, &c.to_ascii_uppercase().to_string());
            assert_eq!(spelled.parse::<MessageId>(), Err(InvalidId), "{spelled}");
        }
    }

    #[test]
    fn display_is_the_one_spelling_that_parses() {
        let id = ProviderId::from_uuid(Uuid::from_u128(0xABCD_EF01_2345_7678_9ABC_DEF0_1234_5678));
        let text = id.to_string();
        assert_eq!(text, "abcdef01-2345-7678-9abc-def012345678");
        assert_eq!(text.parse::<ProviderId>(), Ok(id));
    }

    #[test]
    fn serde_refuses_upper_case_in_human_readable_formats() {
        let id = UserId::new();
        let upper = format!("\"{}\"", id.to_string().to_uppercase());
        assert!(serde_json::from_str::<UserId>(&upper).is_err());
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<MessageId> = (0..1000).map(|_| MessageId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let bytes: Vec<[u8; 16]> = ids.iter().map(|id| id.to_bytes()).collect();
        assert!(bytes.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let id = UserId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<UserId>("\"not-a-uuid\"").is_err());
    }
}
