//! The JSON config file: reading it and rejecting what would otherwise be silently ignored
//! (unknown keys, keys given twice, values of the wrong shape), with line and column. Values
//! are kept as JSON here; their meaning is checked by the caller, which names the flag.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::error::ConfigError;
use super::options::{Kind, Section as OptSection, SPECS};

/// A parsed config file.
#[derive(Debug)]
pub(crate) struct Document {
    pub path: PathBuf,
    pub server: Option<Section>,
    pub applications: Vec<Section>,
}

/// One JSON object (`server` or an entry of `applications`) with its known keys.
#[derive(Debug)]
pub(crate) struct Section {
    /// `server` or `applications[i]`, for messages.
    pub label: String,
    pub entries: Vec<(String, Value)>,
}

impl Section {
    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Reads and checks the file at `path`.
pub(crate) fn read(path: &Path) -> Result<Document, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read --config-file {}: {e}", path.display())))?;
    parse(&text, path)
}

/// Parses `text` as the config file found at `path`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let raw: RawDocument = serde_json::from_str(text)
        .map_err(|e| ConfigError(format!("invalid --config-file {}: {e}", path.display())))?;
    let mut applications = raw.applications;
    for (i, app) in applications.iter_mut().enumerate() {
        app.label = format!("applications[{i}]");
    }
    Ok(Document {
        path: path.to_owned(),
        server: raw.server,
        applications,
    })
}

struct RawDocument {
    server: Option<Section>,
    applications: Vec<Section>,
}

impl<'de> Deserialize<'de> for RawDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = RawDocument;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with \"server\" and/or \"applications\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDocument, A::Error> {
        let mut server = None;
        let mut applications = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "server" if server.is_some() => return Err(twice("server", "the top level")),
                "server" => server = Some(map.next_value_seed(SectionSeed(Place::Server))?),
                "applications" if applications.is_some() => {
                    return Err(twice("applications", "the top level"))
                }
                "applications" => applications = Some(map.next_value_seed(AppsSeed)?),
                other => return Err(de::Error::custom(unknown_key(other, Place::Top))),
            }
        }
        Ok(RawDocument {
            server,
            applications: applications.unwrap_or_default(),
        })
    }
}

/// Which object is being read: decides the allowed keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Server,
    App,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Top => "the top level",
            Place::Server => "\"server\"",
            Place::App => "an entry of \"applications\"",
        }
    }

    fn keys(self) -> Vec<&'static str> {
        match self {
            Place::Top => vec!["server", "applications"],
            Place::Server | Place::App => SPECS
                .iter()
                .filter(|s| (s.section == OptSection::App) == (self == Place::App))
                .flat_map(|s| s.json.iter().copied())
                .collect(),
        }
    }
}

struct AppsSeed;

impl<'de> DeserializeSeed<'de> for AppsSeed {
    type Value = Vec<Section>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AppsSeed {
    type Value = Vec<Section>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of application objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Section>, A::Error> {
        let mut apps = Vec::new();
        while let Some(app) = seq.next_element_seed(SectionSeed(Place::App))? {
            apps.push(app);
        }
        Ok(apps)
    }
}

struct SectionSeed(Place);

impl<'de> DeserializeSeed<'de> for SectionSeed {
    type Value = Section;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SectionSeed {
    type Value = Section;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Place::App => f.write_str("an application object"),
            _ => f.write_str("an object of server options"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Section, A::Error> {
        let allowed = self.0.keys();
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            // Checked before the value is read, so the reported position is the key's.
            if !allowed.contains(&key.as_str()) {
                return Err(de::Error::custom(unknown_key(&key, self.0)));
            }
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(twice(&key, self.0.name()));
            }
            let value: Value = if json_option(&key) {
                map.next_value_seed(StrictValue)?
            } else {
                map.next_value()?
            };
            entries.push((key, value));
        }
        Ok(Section {
            label: match self.0 {
                Place::App => String::from("applications[]"),
                _ => String::from("server"),
            },
            entries,
        })
    }
}

/// True for the keys of options whose value is a JSON array or object (`app_webhooks`).
fn json_option(key: &str) -> bool {
    SPECS
        .iter()
        .any(|s| matches!(s.kind, Kind::Json(_)) && s.json.contains(&key))
}

/// Parses JSON text like `serde_json::from_str::<Value>`, but a key given twice in an object
/// is an error: `Value` would keep the last one silently, so `{"X-A": "1", "X-A": "2"}` would
/// lose a header without a word.
pub(crate) fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value of any shape whose objects have no key twice.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(twice(&key, "an object"));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn twice<E: de::Error>(key: &str, place: &str) -> E {
    E::custom(format!("key \"{key}\" appears twice in {place}"))
}

/// "unknown key" with the most useful hint: where the key belongs if it is known elsewhere,
/// else the closest known key.
fn unknown_key(key: &str, place: Place) -> String {
    let mut msg = format!("unknown key \"{key}\" in {}", place.name());
    let elsewhere = [Place::Top, Place::Server, Place::App]
        .into_iter()
        .filter(|p| *p != place)
        .find(|p| p.keys().contains(&key));
    match elsewhere {
        Some(Place::Top) => msg.push_str(" (it belongs at the top level)"),
        Some(Place::Server) => msg.push_str(" (server options go in the \"server\" object)"),
        Some(Place::App) => msg.push_str(" (app settings go in the entries of \"applications\")"),
        None => {
            if let Some(near) = closest(key, &place.keys()) {
                msg.push_str(&format!(" (did you mean \"{near}\"?)"));
            }
        }
    }
    msg
}

/// The known key nearest to `key`, when it is near enough to be a typo of it.
pub(crate) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let (dist, best) = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .min_by_key(|(d, _)| *d)?;
    // A third of the key's length: catches typos without suggesting unrelated keys.
    (dist <= (key.len() / 3).max(1)).then_some(best)
}

/// Edit distance counting a swap of neighbours as one edit ("prot" is one edit from "port").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("c.json")).unwrap_err().0
    }

    #[test]
    fn reads_sections_in_order() {
        let doc = parse(
            r#"{"server": {"port": 1, "redis_cluster_mode": true},
                "applications": [{"app_id": "a"}, {"app_id": 2}]}"#,
            Path::new("c.json"),
        )
        .unwrap();
        let server = doc.server.unwrap();
        assert_eq!(server.get("port"), Some(&Value::from(1)));
        assert_eq!(doc.applications.len(), 2);
        assert_eq!(doc.applications[1].label, "applications[1]");
        assert_eq!(doc.applications[1].get("app_id"), Some(&Value::from(2)));
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("prot", "port"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn empty_object_is_a_valid_file() {
        let doc = parse("{}", Path::new("c.json")).unwrap();
        assert!(doc.server.is_none() && doc.applications.is_empty());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = err("{\n  \"server\": {\"port\": 1,}\n}");
        assert!(e.starts_with("invalid --config-file c.json: "), "{e}");
        assert!(e.contains("line 2 column"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named_with_a_hint_and_position() {
        let e = err("{\"server\": {\n\"prot\": 1}}");
        assert!(e.contains("unknown key \"prot\" in \"server\""), "{e}");
        assert!(e.contains("did you mean \"port\"?"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = err(r#"{"applications": [{"app_id": "a", "port": 1}]}"#);
        assert!(
            e.contains("\"port\"") && e.contains("\"server\" object"),
            "{e}"
        );

        let e = err(r#"{"server": {"app_key": "k"}}"#);
        assert!(e.contains("go in the entries of \"applications\""), "{e}");

        let e = err(r#"{"port": 1}"#);
        assert!(e.contains("unknown key \"port\" in the top level"), "{e}");

        let e = err(r#"{"server": {"zzzzzzzz": 1}}"#);
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn json_options_refuse_keys_given_twice_at_any_depth() {
        let e =
            err(r#"{"applications": [{"app_webhooks": [{"headers": {"X-A": "1", "X-A": "2"}}]}]}"#);
        assert!(
            e.contains("key \"X-A\" appears twice in an object at line 1"),
            "{e}"
        );
        let v = parse_strict(r#"[{"a": [1, -2, 2.5, "x", null, true]}]"#).unwrap();
        assert_eq!(v, serde_json::json!([{"a": [1, -2, 2.5, "x", null, true]}]));
        let e = parse_strict(r#"{"a": {"b": 1, "b": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("key \"b\" appears twice"), "{e}");
        assert!(parse_strict("[1] x").is_err());
    }

    #[test]
    fn duplicate_keys_and_wrong_shapes_are_errors() {
        let e = err(r#"{"server": {"port": 1, "port": 2}}"#);
        assert!(e.contains("key \"port\" appears twice"), "{e}");
        let e = err(r#"{"applications": {"app_id": "a"}}"#);
        assert!(e.contains("invalid type"), "{e}");
        let e = err(r#"[1]"#);
        assert!(e.contains("invalid type"), "{e}");
        let e = err(r#"{"server": {}} x"#);
        assert!(e.contains("trailing characters"), "{e}");
    }
}
