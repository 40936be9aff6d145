//! Keeping the password out of connection errors, should the driver echo it.

/// An error of the driver with the password taken out, should the driver have echoed it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Redacted(pub(super) String);

/// `error`, unless its message or debug form shows `password`, in which case a copy with
/// the password masked.
pub(super) fn redact(error: sqlx::Error, password: Option<&str>) -> chat_core::BoxError {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Box::new(error);
    };
    let mut shown = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        shown.push_str(&format!("{s} {s:?}"));
        source = s.source();
    }
    if shown.contains(password) {
        Box::new(Redacted(error.to_string().replace(password, "***")))
    } else {
        Box::new(error)
    }
}

/// The password in a URL, decoded, for [`redact`].
pub(super) fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let raw = parsed.password()?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}
