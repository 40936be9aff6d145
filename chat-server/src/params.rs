//! What a URL carries besides its route: ids in the path, and the query parameters of the
//! lists (page size, cursors, order).

use std::str::FromStr;

use chat_core::validation::Rule;
use chat_core::{Limit, ValidationError};

/// A path parameter that must be an id.
pub(crate) fn path_id<T: FromStr>(value: &str, name: &'static str) -> Result<T, ValidationError> {
    value
        .parse()
        .map_err(|_| ValidationError::new(name, Rule::Uuid))
}

/// The query parameters a list understands; each may appear once.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub(crate) limit: Option<String>,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) order: Option<String>,
}

impl Query {
    /// Parses a query string. Parameters this server does not know are ignored; a known one
    /// given twice is an error, since which of the two was meant cannot be known.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ValidationError> {
        let mut out = Query::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let (slot, name) = match &*key {
                "limit" => (&mut out.limit, "limit"),
                "before" => (&mut out.before, "before"),
                "after" => (&mut out.after, "after"),
                "order" => (&mut out.order, "order"),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ValidationError::new(
                    name,
                    Rule::Other("must be given at most once"),
                ));
            }
        }
        Ok(out)
    }

    /// The page size; absent is the default.
    pub(crate) fn limit(&self) -> Result<Limit, ValidationError> {
        self.limit
            .as_deref()
            .map_or(Ok(Limit::DEFAULT), Limit::parse)
    }

    /// The page size and id cursor of a list that pages by id, in the direction `by`; the
    /// other cursor and `order` are refused.
    pub(crate) fn id_page<T: FromStr>(
        &self,
        by: IdCursor,
    ) -> Result<(Limit, Option<T>), ValidationError> {
        let limit = self.limit()?;
        let (cursor, name, other, other_name, why) = match by {
            IdCursor::After => (
                &self.after,
                "after",
                &self.before,
                "before",
                "is not a parameter of this list; use after",
            ),
            IdCursor::Before => (
                &self.before,
                "before",
                &self.after,
                "after",
                "is not a parameter of this list; use before",
            ),
        };
        Query::forbid(other, other_name, why)?;
        Query::forbid(&self.order, "order", "is not a parameter of this list")?;
        Ok((limit, cursor_id(cursor.as_deref(), name)?))
    }

    /// Refuses a cursor parameter this list does not take.
    pub(crate) fn forbid(
        value: &Option<String>,
        name: &'static str,
        why: &'static str,
    ) -> Result<(), ValidationError> {
        match value {
            Some(_) => Err(ValidationError::new(name, Rule::Other(why))),
            None => Ok(()),
        }
    }
}

/// Which way a list pages by id: the cursor it takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdCursor {
    /// `after`: ids after this one (oldest first).
    After,
    /// `before`: ids before this one (newest first).
    Before,
}

/// A cursor that must be an id.
fn cursor_id<T: FromStr>(
    value: Option<&str>,
    name: &'static str,
) -> Result<Option<T>, ValidationError> {
    value.map(|v| path_id(v, name)).transpose()
}

/// A cursor that must be a message position.
pub(crate) fn cursor_seq(
    value: Option<&str>,
    name: &'static str,
) -> Result<Option<u64>, ValidationError> {
    value
        .map(|v| {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValidationError::new(
                    name,
                    Rule::Range {
                        min: 0,
                        max: u64::MAX,
                    },
                ));
            }
            v.parse().map_err(|_| {
                ValidationError::new(
                    name,
                    Rule::Range {
                        min: 0,
                        max: u64::MAX,
                    },
                )
            })
        })
        .transpose()
}
