//! [`Associations`]: for every app, the ordered list of `{channelName, functionNames[]}` of an
//! associations document (`{"applications":{"<app id>":{"channels":[…]}}}`), each pattern
//! compiled once, each list of names resolved to a [`Pipeline`] of configured functions. The
//! first entry whose pattern matches at the start of a channel's name is the channel's.

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::table::FunctionTable;
use crate::limits::{
    ASSOCIATIONS_PER_APP_MAX, ASSOCIATIONS_TOTAL_MAX, ASSOCIATION_PATTERN_BYTES_MAX,
    ASSOCIATION_PATTERN_COMPILED_BYTES_MAX, FUNCTIONS_PER_PIPELINE_MAX,
};

/// The functions a channel's messages run through, in order: (name, URL) each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Name and URL of each function.
    pub functions: Vec<(String, String)>,
}

/// One entry of an app's list.
#[derive(Debug)]
struct Association {
    /// `^(?:channelName)`.
    pattern: Regex,
    pipeline: Arc<Pipeline>,
}

/// Every app's associations, and the document they came from (sent to the other nodes).
#[derive(Debug, Default)]
pub struct Associations {
    by_app: AHashMap<String, Vec<Association>>,
    /// The accepted document as JSON text (empty when there is none).
    document: Bytes,
}

#[derive(Deserialize)]
struct Document {
    applications: std::collections::HashMap<String, AppEntry>,
}

#[derive(Deserialize)]
struct AppEntry {
    #[serde(default)]
    channels: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "channelName")]
    channel_name: String,
    #[serde(rename = "functionNames")]
    function_names: Vec<String>,
}

impl Associations {
    /// Parses and checks a document: every pattern a valid regex of at most
    /// [`ASSOCIATION_PATTERN_BYTES_MAX`] bytes, every function configured in `table`, at most
    /// [`FUNCTIONS_PER_PIPELINE_MAX`] per entry, [`ASSOCIATIONS_PER_APP_MAX`] per app and
    /// [`ASSOCIATIONS_TOTAL_MAX`] in all. Members other than `applications` (a token's `iat`)
    /// are ignored. An app this node does not serve is kept: other apps' lists cost nothing.
    pub fn parse(document: &[u8], table: &FunctionTable) -> Result<Associations, String> {
        let value: serde_json::Value = serde_json::from_slice(document)
            .map_err(|e| format!("not an associations document: {e}"))?;
        Self::from_value(&value, table)
    }

    /// Like [`parse`](Self::parse), from a document already parsed (a token's claims).
    pub fn from_value(
        value: &serde_json::Value,
        table: &FunctionTable,
    ) -> Result<Associations, String> {
        let parsed = Document::deserialize(value)
            .map_err(|e| format!("not an associations document: {e}"))?;
        let total: usize = parsed.applications.values().map(|a| a.channels.len()).sum();
        if total > ASSOCIATIONS_TOTAL_MAX {
            return Err(format!(
                "{total} associations: at most {ASSOCIATIONS_TOTAL_MAX} in all"
            ));
        }
        let mut by_app = AHashMap::with_capacity(parsed.applications.len());
        for (app_id, entry) in parsed.applications {
            if entry.channels.len() > ASSOCIATIONS_PER_APP_MAX {
                return Err(format!(
                    "app {app_id:?}: {} associations, at most {ASSOCIATIONS_PER_APP_MAX}",
                    entry.channels.len()
                ));
            }
            let list = entry
                .channels
                .into_iter()
                .map(|e| association(&app_id, e, table))
                .collect::<Result<Vec<_>, _>>()?;
            by_app.insert(app_id, list);
        }
        // What goes to the other nodes is the checked document alone, re-encoded.
        let document = Bytes::from(canonical(value)?);
        Ok(Associations { by_app, document })
    }

    /// The pipeline of a channel of an app: the first association whose pattern matches at
    /// the start of its name.
    pub fn pipeline(&self, app_id: &str, channel: &str) -> Option<&Arc<Pipeline>> {
        self.by_app
            .get(app_id)?
            .iter()
            .find(|a| a.pattern.is_match(channel))
            .map(|a| &a.pipeline)
    }

    /// True when the app has at least one association (most publishes stop here).
    pub fn has_app(&self, app_id: &str) -> bool {
        self.by_app.get(app_id).is_some_and(|list| !list.is_empty())
    }

    /// Associations in all.
    pub fn len(&self) -> usize {
        self.by_app.values().map(Vec::len).sum()
    }

    /// No association at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document as JSON text, for the other nodes.
    pub fn document(&self) -> &Bytes {
        &self.document
    }
}

fn association(app_id: &str, entry: Entry, table: &FunctionTable) -> Result<Association, String> {
    let Entry {
        channel_name,
        function_names,
    } = entry;
    if channel_name.len() > ASSOCIATION_PATTERN_BYTES_MAX {
        return Err(format!(
            "app {app_id:?}: a channelName pattern over {ASSOCIATION_PATTERN_BYTES_MAX} bytes"
        ));
    }
    if function_names.len() > FUNCTIONS_PER_PIPELINE_MAX {
        return Err(format!(
            "app {app_id:?}, channelName {channel_name:?}: {} functions, at most \
             {FUNCTIONS_PER_PIPELINE_MAX}",
            function_names.len()
        ));
    }
    // Anchored at the start: Ekko matched a channel whose name the pattern prefixes.
    let pattern = RegexBuilder::new(&format!("^(?:{channel_name})"))
        .size_limit(ASSOCIATION_PATTERN_COMPILED_BYTES_MAX)
        .build()
        .map_err(|e| {
            format!("app {app_id:?}: channelName {channel_name:?} is not a valid pattern: {e}")
        })?;
    let functions = function_names
        .into_iter()
        .map(|name| match table.url(&name) {
            Some(url) => Ok((name, url.to_owned())),
            None => Err(format!(
                "app {app_id:?}, channelName {channel_name:?}: function {name:?} is not configured \
                 (--channel-functions)"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Association {
        pattern,
        pipeline: Arc::new(Pipeline { functions }),
    })
}

/// `{"applications":…}` of a document, encoded without its other members.
fn canonical(document: &serde_json::Value) -> Result<Vec<u8>, String> {
    let applications = document.get("applications").cloned().unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({ "applications": applications }))
        .map_err(|e| format!("cannot encode: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table() -> FunctionTable {
        FunctionTable::parse("capitalize=http://f/c,reverse=http://f/r,emphasize=http://f/e")
            .unwrap()
    }

    const EKKO_SAMPLE: &str = r#"{"applications":{"app_1":{"channels":[
        {"channelName":"channel_1","functionNames":["capitalize"]},
        {"channelName":"channel_2","functionNames":["reverse"]},
        {"channelName":"chan.*_4","functionNames":["capitalize","reverse","emphasize"]}
    ]}},"iat":1700000000}"#;

    fn names(a: &Associations, app: &str, channel: &str) -> Option<Vec<String>> {
        a.pipeline(app, channel)
            .map(|p| p.functions.iter().map(|(n, _)| n.clone()).collect())
    }

    #[test]
    fn the_first_pattern_that_prefixes_the_name_wins() {
        let a = Associations::parse(EKKO_SAMPLE.as_bytes(), &table()).unwrap();
        assert_eq!(
            names(&a, "app_1", "channel_1"),
            Some(vec!["capitalize".into()])
        );
        // A prefix match: channel_10 starts with channel_1.
        assert_eq!(
            names(&a, "app_1", "channel_10"),
            Some(vec!["capitalize".into()])
        );
        assert_eq!(
            names(&a, "app_1", "channel_4"),
            Some(vec![
                "capitalize".into(),
                "reverse".into(),
                "emphasize".into()
            ])
        );
        // Anchored at the start: "xchannel_2" does not match "channel_2".
        assert_eq!(names(&a, "app_1", "xchannel_2"), None);
        assert_eq!(names(&a, "app_2", "channel_1"), None);
        assert_eq!(
            a.pipeline("app_1", "channel_2").unwrap().functions[0].1,
            "http://f/r"
        );
        assert_eq!(a.len(), 3);
        assert!(a.has_app("app_1") && !a.has_app("app_2"));
        // The token's `iat` does not travel to the other nodes.
        let doc: serde_json::Value = serde_json::from_slice(a.document()).unwrap();
        assert!(doc.get("iat").is_none() && doc.get("applications").is_some());
        let again = Associations::parse(a.document(), &table()).unwrap();
        assert_eq!(
            names(&again, "app_1", "channel_4"),
            names(&a, "app_1", "channel_4")
        );
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        for (doc, says) in [
            ("[]", "not an associations document"),
            (r#"{"apps":{}}"#, "not an associations document"),
            (
                r#"{"applications":{"a":{"channels":[{"channelName":"(","functionNames":[]}]}}}"#,
                "not a valid pattern",
            ),
            (
                r#"{"applications":{"a":{"channels":[{"channelName":"c","functionNames":["nope"]}]}}}"#,
                "not configured",
            ),
            (
                r#"{"applications":{"a":{"channels":[{"channelName":"c","functionNames":["reverse","reverse","reverse","reverse","reverse","reverse","reverse","reverse","reverse"]}]}}}"#,
                "at most",
            ),
            (
                r#"{"applications":{"a":{"channels":[{"channelName":"c{1000}{1000}","functionNames":[]}]}}}"#,
                "not a valid pattern",
            ),
        ] {
            let err = Associations::parse(doc.as_bytes(), &table()).unwrap_err();
            assert!(err.contains(says), "{doc}: {err}");
        }
        let entry = r#"{"channelName":"c","functionNames":["reverse"]}"#;
        let many = vec![entry; ASSOCIATIONS_PER_APP_MAX + 1].join(",");
        let doc = format!(r#"{{"applications":{{"a":{{"channels":[{many}]}}}}}}"#);
        assert!(Associations::parse(doc.as_bytes(), &table()).is_err());
    }
}
