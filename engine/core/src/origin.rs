//! [`AllowedOrigins`]: an app's allow-list of the web origins whose pages may open a socket to
//! it (`app_allowed_origins`). A browser always sends the page's `Origin` with a WebSocket
//! upgrade, so without a list any web page could open a socket from a visitor's browser and use
//! the visitor's cookies (auth offload forwards them). Clients that are not browsers (server
//! SDKs, devices) send no `Origin` and are not affected.
//!
//! Entries, compared without regard to ASCII case:
//! - `*`: any origin (the same as no list).
//! - `https://app.example.com`, `http://localhost:8080`: that scheme, host and port exactly (no
//!   port: the scheme's default port, which browsers leave out).
//! - `https://*.example.com`: that scheme and port, any subdomain of `example.com` (not
//!   `example.com` itself).
//! - `app.example.com`, `*.example.com`, `example.com:8443`: without a scheme, any scheme; without
//!   a port, any port.

use crate::limits::ALLOWED_ORIGINS_MAX;

/// One entry of an allow-list, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`.
    Any,
    /// A scheme (or any), a host or `*.` domain, a port (or any / the default).
    Pattern {
        /// Lowercase scheme; `None`: any.
        scheme: Option<String>,
        /// Lowercase host, or the domain after `*.` when `subdomains`.
        host: String,
        /// Any subdomain of `host`, not `host` itself.
        subdomains: bool,
        /// The port as written; `None`: the default port (with a scheme) or any (without).
        port: Option<String>,
    },
}

/// An app's allowed origins; empty allows every origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    entries: Vec<Entry>,
}

/// An origin `scheme://host[:port]` split into its parts, lowercased.
struct Origin {
    scheme: String,
    host: String,
    port: Option<String>,
}

impl Origin {
    /// The parts of an `Origin` header; `None` for anything else (`null`, a path, garbage).
    fn parse(value: &str) -> Option<Origin> {
        let value = value.trim().to_ascii_lowercase();
        let (scheme, authority) = value.split_once("://")?;
        let (host, port) = split_port(authority)?;
        let valid_scheme = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
        (valid_scheme && is_host(host)).then(|| Origin {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port: port.map(str::to_owned),
        })
    }
}

/// `host[:port]` → (host, port); `None` when the port is not a number or a path, query,
/// fragment or user part follows. IPv6 literals keep their brackets: `[::1]:8080`.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')? + 2; // past the brackets, in `authority`
            let (host, after) = authority.split_at(end);
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':')?)),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok.then_some((host, port))
}

/// A host name, an IPv4 address or a bracketed IPv6 literal.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
}

impl Entry {
    fn parse(text: &str) -> Result<Entry, String> {
        let lower = text.trim().to_ascii_lowercase();
        if lower == "*" {
            return Ok(Entry::Any);
        }
        let (scheme, authority) = match lower.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_owned()), rest),
            None => (None, lower.as_str()),
        };
        let invalid = || {
            format!("{text:?} is not an origin (like https://app.example.com, *.example.com or *)")
        };
        if scheme
            .as_deref()
            .is_some_and(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(invalid());
        }
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = split_port(authority).ok_or_else(invalid)?;
        let (host, subdomains) = match host.strip_prefix("*.") {
            Some(domain) => (domain, true),
            None => (host, false),
        };
        if !is_host(host) || (subdomains && !host.contains('.') && host != "localhost") {
            return Err(invalid());
        }
        Ok(Entry::Pattern {
            scheme,
            host: host.to_owned(),
            subdomains,
            port: port.map(str::to_owned),
        })
    }

    fn allows(&self, origin: &Origin) -> bool {
        let Entry::Pattern {
            scheme,
            host,
            subdomains,
            port,
        } = self
        else {
            return true;
        };
        let scheme_ok = scheme.as_ref().is_none_or(|s| *s == origin.scheme);
        let host_ok = if *subdomains {
            origin
                .host
                .strip_suffix(host.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            origin.host == *host
        };
        let port_ok = match (scheme, port) {
            (_, Some(port)) => origin.port.as_ref() == Some(port),
            (Some(_), None) => origin.port.is_none(),
            (None, None) => true,
        };
        scheme_ok && host_ok && port_ok
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Entry::Pattern {
            scheme,
            host,
            subdomains,
            port,
        } = self
        else {
            return f.write_str("*");
        };
        if let Some(scheme) = scheme {
            write!(f, "{scheme}://")?;
        }
        if *subdomains {
            f.write_str("*.")?;
        }
        f.write_str(host)?;
        match port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// The entries, lowercased, comma-separated (as `--app-allowed-origins` takes them).
impl std::fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, entry) in self.entries.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl AllowedOrigins {
    /// The list of `entries` (at most [`ALLOWED_ORIGINS_MAX`]), each checked.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for text in entries.into_iter().filter(|e| !e.trim().is_empty()) {
            if parsed.len() >= ALLOWED_ORIGINS_MAX {
                return Err(format!("more than {ALLOWED_ORIGINS_MAX} allowed origins"));
            }
            parsed.push(Entry::parse(text)?);
        }
        Ok(AllowedOrigins { entries: parsed })
    }

    /// True when no list restricts origins (none given, or `*` among them).
    pub fn allows_any(&self) -> bool {
        self.entries.is_empty() || self.entries.contains(&Entry::Any)
    }

    /// Whether an upgrade with this `Origin` header (`None`: no header) may go on. A request
    /// without `Origin` does not come from a web page and is allowed; one that names no origin
    /// the list allows (`null` included) is not.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.allows_any() {
            return true;
        }
        Origin::parse(origin).is_some_and(|origin| self.entries.iter().any(|e| e.allows(&origin)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn list(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::parse(entries.iter().copied()).unwrap()
    }

    #[test]
    fn no_list_or_a_star_allows_every_origin() {
        assert!(list(&[]).allows(Some("https://evil.example")));
        assert!(list(&["https://a.example", "*"]).allows(Some("https://evil.example")));
        assert!(list(&[]).allows_any() && !list(&["https://a.example"]).allows_any());
    }

    #[test]
    fn requests_without_an_origin_are_allowed() {
        assert!(list(&["https://app.example.com"]).allows(None));
    }

    #[test]
    fn an_exact_origin_matches_scheme_host_and_port() {
        let l = list(&["https://App.Example.com", "http://localhost:8080"]);
        assert!(l.allows(Some("https://app.example.com")));
        assert!(l.allows(Some("HTTPS://APP.EXAMPLE.COM")));
        assert!(l.allows(Some("http://localhost:8080")));
        assert!(!l.allows(Some("http://app.example.com")), "another scheme");
        assert!(
            !l.allows(Some("https://app.example.com:8443")),
            "another port"
        );
        assert!(!l.allows(Some("http://localhost:8081")));
        assert!(!l.allows(Some("https://app.example.com.evil.example")));
        assert!(!l.allows(Some("https://evilapp.example.com")));
        assert!(!l.allows(Some("null")));
        assert!(!l.allows(Some("")));
        assert!(!l.allows(Some("https://app.example.com/path")));
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let l = list(&["*.example.com"]);
        assert!(l.allows(Some("https://a.example.com")));
        assert!(
            l.allows(Some("http://a.b.example.com:3000")),
            "any scheme and port"
        );
        assert!(!l.allows(Some("https://example.com")));
        assert!(!l.allows(Some("https://badexample.com")));
        assert!(!l.allows(Some("https://example.com.evil.example")));
        let with_scheme = list(&["https://*.example.com"]);
        assert!(with_scheme.allows(Some("https://a.example.com")));
        assert!(!with_scheme.allows(Some("http://a.example.com")));
        assert!(!with_scheme.allows(Some("https://a.example.com:8443")));
    }

    #[test]
    fn entries_that_are_not_origins_are_refused() {
        for bad in [
            "https://",
            "https://a.example.com/path",
            "*.com",
            "**.example.com",
            "https://a.example.com:port",
            "ht tp://a.example.com",
            "://a.example.com",
            "a example.com",
        ] {
            assert!(AllowedOrigins::parse([bad]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=ALLOWED_ORIGINS_MAX)
            .map(|n| format!("https://h{n}.example.com"))
            .collect();
        assert!(AllowedOrigins::parse(many.iter().map(String::as_str)).is_err());
        assert!(
            AllowedOrigins::parse(["https://a.example.com/"]).is_ok(),
            "a trailing slash"
        );
        let v6 = list(&["http://[::1]:8080"]);
        assert!(v6.allows(Some("http://[::1]:8080")));
        assert!(!v6.allows(Some("http://[::1]")));
    }
}
