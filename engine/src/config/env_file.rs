//! The `.env` file: `KEY=VALUE` lines read as environment variables that the real process
//! environment overrides. Supports `#` comments, an optional `export ` prefix and single or
//! double quotes (double quotes understand `\n`, `\t`, `\"` and `\\`). No `${VAR}` expansion
//! and no multi-line values: a line that is not understood is an error, not a guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The variables of one env file.
#[derive(Debug)]
pub(crate) struct EnvFile {
    pub path: PathBuf,
    pub vars: HashMap<String, String>,
}

/// Reads the env file at `path`. A missing file is `Ok(None)` unless the user named it
/// (`explicit`), because the default `./.env` is optional but a named file is not.
pub(crate) fn load(path: &Path, explicit: bool) -> Result<Option<EnvFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => {
            return Err(ConfigError(format!(
                "cannot read --env-file {}: {e}",
                path.display()
            )))
        }
    };
    let vars = parse(&text)
        .map_err(|why| ConfigError(format!("invalid --env-file {}: {why}", path.display())))?;
    Ok(Some(EnvFile {
        path: path.to_owned(),
        vars: vars.into_iter().collect(),
    }))
}

/// Parses the file's text; a later line for the same key wins, as with other dotenv readers.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: expected KEY=VALUE"));
        };
        let key = key.trim_end();
        if !is_name(key) {
            return Err(format!("line {n}: {key:?} is not a variable name"));
        }
        let value = parse_value(value.trim_start()).map_err(|why| format!("line {n}: {why}"))?;
        vars.push((key.to_owned(), value));
    }
    Ok(vars)
}

fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(raw: &str) -> Result<String, String> {
    let (value, rest) = if let Some(body) = raw.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated double quote")?;
        (value, &body[end..])
    } else if let Some(body) = raw.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single quote")?;
        (body[..end].to_owned(), &body[end + 1..])
    } else {
        // Unquoted: a `#` after whitespace starts a comment; a `#` inside a word is kept.
        let value = match raw.find(" #").or_else(|| raw.find("\t#")) {
            Some(at) => &raw[..at],
            None => raw,
        };
        return Ok(value.trim_end().to_owned());
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err(format!("unexpected {rest:?} after the closing quote"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn get(text: &str, key: &str) -> Option<String> {
        let vars = parse(text).unwrap();
        vars.into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn parses_the_usual_forms() {
        let text = "\u{feff}# comment\n\
                    \n\
                    PORT=7000\n\
                    export APP_ID = abc  # trailing comment\n\
                    APP_KEY=\"k ey\\n\\\"q\\\"\" # c\n\
                    APP_SECRET='s#e\\cret'\n\
                    HASH=a#b\n\
                    EMPTY=\n\
                    exporter=1\n\
                    PORT=7001\n";
        assert_eq!(get(text, "PORT").as_deref(), Some("7001"));
        assert_eq!(get(text, "APP_ID").as_deref(), Some("abc"));
        assert_eq!(get(text, "APP_KEY").as_deref(), Some("k ey\n\"q\""));
        assert_eq!(get(text, "APP_SECRET").as_deref(), Some("s#e\\cret"));
        assert_eq!(get(text, "HASH").as_deref(), Some("a#b"));
        assert_eq!(get(text, "EMPTY").as_deref(), Some(""));
        assert_eq!(get(text, "exporter").as_deref(), Some("1"));
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_number() {
        assert_eq!(
            parse("A=1\nnonsense").unwrap_err(),
            "line 2: expected KEY=VALUE"
        );
        assert!(parse("1A=1").unwrap_err().contains("not a variable name"));
        assert!(parse("A=\"open")
            .unwrap_err()
            .contains("unterminated double quote"));
        assert!(parse("A='open")
            .unwrap_err()
            .contains("unterminated single quote"));
        assert!(parse("A=\"x\" y")
            .unwrap_err()
            .contains("after the closing quote"));
    }

    #[test]
    fn missing_file_is_fine_only_when_not_named() {
        let path = std::env::temp_dir().join(format!(
            "ringcast-env-file-missing-{}.env",
            std::process::id()
        ));
        assert!(load(&path, false).unwrap().is_none());
        let e = load(&path, true).unwrap_err().0;
        assert!(e.starts_with("cannot read --env-file "), "{e}");
    }
}
