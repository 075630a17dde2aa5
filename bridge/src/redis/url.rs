//! Makes a Redis URL fit for the log: the password (in the user-info part, or a `pass=` query
//! parameter of a Unix-socket URL) is replaced by `***`; and tells whether a URL has one at all
//! (the command line refuses those: `crate::args`).

/// `url` with its password masked; everything else as given.
pub fn without_password(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (url, None),
    };
    let mut redacted = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info.split_once(':').map_or("", |(user, _)| user);
                    let masked = if user_info.contains(':') {
                        format!("{user}:***")
                    } else {
                        // `redis://secret@host`: a lone user-info is the password.
                        "***".to_string()
                    };
                    format!("{scheme}://{masked}@{host}{path}")
                }
                None => before_query.to_string(),
            }
        }
        None => before_query.to_string(),
    };
    if let Some(query) = query {
        redacted.push('?');
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password") =>
                {
                    format!("{key}=***")
                }
                _ => parameter.to_string(),
            })
            .collect();
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

/// Whether `url` (or, for a cluster's comma-separated seeds, any seed in it) carries a password
/// where [`without_password`] would mask one: a user-info part (a lone one is the password) or
/// a `pass=` / `password=` query parameter.
pub fn has_password(url: &str) -> bool {
    // The whole text too: a raw comma inside a password would split it into harmless pieces.
    url.split(',').chain([url]).any(|one| {
        let (before_query, query) = match one.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (one, None),
        };
        let in_user_info = before_query.split_once("://").is_some_and(|(_, rest)| {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            rest[..authority_end].contains('@')
        });
        let in_query = query.is_some_and(|query| {
            query.split('&').any(|parameter| {
                parameter.split_once('=').is_some_and(|(key, _)| {
                    key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password")
                })
            })
        });
        in_user_info || in_query
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_only() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"),
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("rediss://user:s3cret@host", "rediss://user:***@host"),
            ("redis://s3cret@host", "redis://***@host"),
            ("redis://u:p@ss@host/1", "redis://u:***@host/1"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=s3cret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(without_password(url), expected, "{url}");
        }
    }

    #[test]
    fn finds_passwords_where_they_would_be_masked() {
        let with = [
            "redis://:s3cret@host:6379/0",
            "rediss://user:s3cret@host",
            "redis://s3cret@host",
            "redis://h1:7001,redis://:s3cret@h2:7002",
            "redis://:a,b@h1:7001",
            "redis+unix:///run/redis.sock?db=1&pass=s3cret",
            "redis://host?password=s3cret",
        ];
        for url in with {
            assert!(has_password(url), "{url}");
            // What the log shows: the whole URL, or each seed of a cluster.
            let masked = url
                .split(',')
                .chain([url])
                .any(|one| without_password(one) != one);
            assert!(masked, "{url} is masked in the log too");
        }
        let without = [
            "redis://127.0.0.1:6379",
            "127.0.0.1:6379",
            "redis://h1:7001,redis://h2:7002",
            "redis+unix:///run/redis.sock?db=1",
            "redis://host/0?protocol=resp3",
        ];
        for url in without {
            assert!(!has_password(url), "{url}");
        }
    }
}
