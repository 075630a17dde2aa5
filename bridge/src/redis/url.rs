//! Makes a Redis URL fit for the log: the password (in the user-info part, or a `pass=` query
//! parameter of a Unix-socket URL) is replaced by `***`.

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
}
