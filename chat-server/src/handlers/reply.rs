//! The shapes of a successful answer: one object, a new object and where it lives, nothing,
//! or a page with a link to the next.

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use serde::Serialize;

use super::Reply;
use crate::response;

/// 200 with `value`.
pub(super) fn ok<T: Serialize>(value: &T) -> Reply {
    Ok(response::json(StatusCode::OK, value))
}

/// 201 with the new object and, when it can be fetched, a `Location` naming its path.
pub(super) fn created<T: Serialize>(value: &T, location: Option<String>) -> Reply {
    let mut response = response::json(StatusCode::CREATED, value);
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// 204 and no body.
pub(super) fn no_content() -> Reply {
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// A page as a JSON array, with a `Link` to the next page when this one is full.
///
/// `path` is the list's path built from its parsed ids, never the request's own path, so the
/// link carries the canonical spelling whatever the client sent.
pub(super) fn page<T, O: Serialize + From<T>>(
    items: Vec<T>,
    limit: usize,
    next: impl FnOnce(&T) -> String,
    path: &str,
) -> Reply {
    let link = (items.len() >= limit)
        .then(|| items.last().map(next))
        .flatten()
        .map(|query| format!("<{path}?{query}>; rel=\"next\""));
    let out: Vec<O> = items.into_iter().map(Into::into).collect();
    let mut response = response::json(StatusCode::OK, &out);
    if let Some(link) = link
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}
