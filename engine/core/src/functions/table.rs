//! [`FunctionTable`]: the functions a node may call, by name, each an HTTP endpoint that takes
//! a message's JSON (POST) and answers the next one. Configured at start
//! (`--channel-functions name=url,…` or a JSON object); associations may only name these, so a
//! `PUT /associations` can never make the node call a URL its operator did not list.

use ahash::AHashMap;

use crate::limits::FUNCTIONS_CONFIGURED_MAX;

/// Bytes of a function name: 128.
const NAME_BYTES_MAX: usize = 128;
/// Bytes of a function URL: 2 048.
const URL_BYTES_MAX: usize = 2_048;

/// The configured functions: name → URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionTable {
    urls: AHashMap<String, String>,
}

impl FunctionTable {
    /// Parses `name=url,name=url` or a JSON object `{"name":"url",…}`. Names are
    /// `[A-Za-z0-9_.-]`, URLs absolute `http://` or `https://`, at most
    /// [`FUNCTIONS_CONFIGURED_MAX`] functions, each name once.
    pub fn parse(text: &str) -> Result<FunctionTable, String> {
        let text = text.trim();
        let pairs: Vec<(String, String)> = if text.starts_with('{') {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| {
                    format!("channel functions: not a JSON object of names to URLs: {e}")
                })?;
            object
                .into_iter()
                .map(|(name, url)| match url {
                    serde_json::Value::String(url) => Ok((name, url)),
                    _ => Err(format!(
                        "channel function {name:?}: its URL must be a string"
                    )),
                })
                .collect::<Result<_, _>>()?
        } else {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| match item.split_once('=') {
                    Some((name, url)) => Ok((name.trim().to_owned(), url.trim().to_owned())),
                    None => Err(format!("channel function {item:?}: expected name=url")),
                })
                .collect::<Result<_, _>>()?
        };
        if pairs.len() > FUNCTIONS_CONFIGURED_MAX {
            return Err(format!(
                "{} channel functions: at most {FUNCTIONS_CONFIGURED_MAX}",
                pairs.len()
            ));
        }
        let mut urls = AHashMap::with_capacity(pairs.len());
        for (name, url) in pairs {
            check_name(&name)?;
            check_url(&name, &url)?;
            if urls.insert(name.clone(), url).is_some() {
                return Err(format!("channel function {name:?} is configured twice"));
            }
        }
        Ok(FunctionTable { urls })
    }

    /// The URL of a function.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.urls.get(name).map(String::as_str)
    }

    /// No function is configured (the node needs no bridge for them).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// How many functions are configured.
    pub fn len(&self) -> usize {
        self.urls.len()
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "channel function name {name:?}: 1 to {NAME_BYTES_MAX} of [A-Za-z0-9_.-]"
        ))
    }
}

fn check_url(name: &str, url: &str) -> Result<(), String> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let host_ok = url
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !scheme_ok || !host_ok || url.len() > URL_BYTES_MAX || url.contains(char::is_whitespace) {
        return Err(format!(
            "channel function {name:?}: {url:?} is not an absolute http:// or https:// URL \
             (at most {URL_BYTES_MAX} bytes)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_table() {
        let list =
            FunctionTable::parse("upper=http://127.0.0.1:9/u, rev=https://f.example/r").unwrap();
        let json =
            FunctionTable::parse(r#"{"upper":"http://127.0.0.1:9/u","rev":"https://f.example/r"}"#)
                .unwrap();
        assert_eq!(list, json);
        assert_eq!(list.url("upper"), Some("http://127.0.0.1:9/u"));
        assert_eq!(list.url("nope"), None);
        assert!(FunctionTable::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        for (text, says) in [
            ("upper", "expected name=url"),
            ("upper=ftp://x/", "not an absolute"),
            ("upper=http://", "not an absolute"),
            ("up per=http://x/", "name"),
            ("a=http://x/,a=http://y/", "twice"),
            (r#"{"a":1}"#, "must be a string"),
            ("{", "JSON"),
        ] {
            let err = FunctionTable::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        let many: Vec<String> = (0..=FUNCTIONS_CONFIGURED_MAX)
            .map(|i| format!("f{i}=http://x/{i}"))
            .collect();
        assert!(FunctionTable::parse(&many.join(",")).is_err());
    }
}
