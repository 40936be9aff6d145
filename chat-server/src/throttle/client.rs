//! Which address a request comes from: the peer's, or, when the peer is a proxy the
//! operator trusts, the address that proxy recorded in `X-Forwarded-For`.

use std::net::IpAddr;

use hyper::header::HeaderMap;

/// The client's address. Entries of `X-Forwarded-For` are read from the right (the most
/// recently added) while the address in hand is a trusted proxy's, since only a trusted
/// proxy's entry can be believed; whatever a client wrote further left could be anything.
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let mut current = peer.map(|ip| ip.to_canonical())?;
    if !trusted.contains(&current) {
        return Some(current);
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for entry in entries.iter().rev() {
        // A trusted proxy that wrote something other than an address is answered as the
        // proxy itself: better to limit the proxy than to trust a made-up key.
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        current = ip.to_canonical();
        if !trusted.contains(&current) {
            break;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let xff = headers(&["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &xff, &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_ip(Some(ip("9.9.9.9")), &xff, &trusted),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &headers(&["junk"]), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            client_ip(
                Some(ip("::ffff:10.0.0.1")),
                &headers(&["::ffff:1.2.3.4"]),
                &trusted
            ),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(client_ip(None, &xff, &trusted), None);
    }
}
