//! The span tree of a scenario or study file: every key and value of the TOML text with its
//! byte range, no schema ([`parse_tree`]), and the lookups that place an error on its line
//! ([`Tree::line_of`]): a serde error by its span, a validation error by its key path.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::load::{friendly, ErrorKind, ScenarioError};
use super::validate::FieldError;

/// Byte offset → 1-based line: the offsets of every `\n` of the text.
#[derive(Clone, Debug)]
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(text: &str) -> Lines {
        Lines(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect())
    }

    pub(super) fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Any TOML value, with the spans of its keys and elements.
#[derive(Debug)]
pub(super) enum Node {
    /// A string, number, boolean or date.
    Leaf,
    /// An array (or array of tables), with each element's span.
    Array(Vec<(Option<Range<usize>>, Node)>),
    /// A table, in file order.
    Table(Vec<Entry>),
}

/// One `key = value` of a table. Spans are absent where the parser has none (e.g. the
/// implicit table of a dotted key).
#[derive(Debug)]
pub(super) struct Entry {
    key: String,
    key_span: Option<Range<usize>>,
    value_span: Option<Range<usize>>,
    value: Node,
}

/// The struct name and fields through which `toml::Spanned` asks the toml deserializer for
/// a span, learnt from `Spanned` itself (so that no private constant is copied here).
#[derive(Clone, Copy, Debug)]
struct SpanProtocol {
    name: &'static str,
    fields: &'static [&'static str],
}

impl SpanProtocol {
    fn learn() -> Option<SpanProtocol> {
        let seen = std::cell::Cell::new(None);
        let _ = Spanned::<()>::deserialize(Recorder(&seen));
        seen.get()
    }

    fn start_field(self) -> &'static str {
        self.fields.first().copied().unwrap_or("")
    }
}

/// A deserializer that only records what `deserialize_struct` was asked for.
struct Recorder<'a>(&'a std::cell::Cell<Option<SpanProtocol>>);

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("recorder"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(Some(SpanProtocol { name, fields }));
        Err(de::Error::custom("recorder"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Parses `text` into a span tree; fails only where the TOML itself is bad.
pub(super) fn parse_tree(text: &str) -> Result<Node, toml::de::Error> {
    let proto = SpanProtocol::learn();
    let deserializer = toml::Deserializer::new(text);
    NodeSeed { proto }.deserialize(deserializer)
}

/// Deserializes a [`Node`] (any value).
#[derive(Clone, Copy)]
struct NodeSeed {
    proto: Option<SpanProtocol>,
}

impl<'de> de::DeserializeSeed<'de> for NodeSeed {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some((span, node)) = seq.next_element_seed(SpannedSeed { proto: self.proto })? {
            items.push((span, node));
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { proto: self.proto })? {
            entries.push(entry(key, &mut map, self.proto)?);
        }
        Ok(Node::Table(entries))
    }
}

/// Reads the value of `key` and makes the entry.
fn entry<'de, A: MapAccess<'de>>(
    (key, key_span): (String, Option<Range<usize>>),
    map: &mut A,
    proto: Option<SpanProtocol>,
) -> Result<Entry, A::Error> {
    let (value_span, value) = map.next_value_seed(SpannedSeed { proto })?;
    Ok(Entry { key, key_span, value_span, value })
}

/// Deserializes a value with its span, where the parser knows it.
#[derive(Clone, Copy)]
struct SpannedSeed {
    proto: Option<SpanProtocol>,
}

impl<'de> de::DeserializeSeed<'de> for SpannedSeed {
    type Value = (Option<Range<usize>>, Node);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.proto {
            Some(p) => d.deserialize_struct(p.name, p.fields, self),
            None => NodeSeed { proto: None }.deserialize(d).map(|n| (None, n)),
        }
    }
}

impl<'de> Visitor<'de> for SpannedSeed {
    type Value = (Option<Range<usize>>, Node);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok((None, Node::Leaf))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok((None, Node::Leaf))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok((None, Node::Leaf))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok((None, Node::Leaf))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok((None, Node::Leaf))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        NodeSeed { proto: self.proto }.visit_seq(seq).map(|n| (None, n))
    }

    /// Either the span protocol (start, end, value) or, where the parser has no span, the
    /// table itself.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let start_field = self.proto.map(SpanProtocol::start_field);
        let Some(first) = map.next_key_seed(KeySeed { proto: self.proto })? else {
            return Ok((None, Node::Table(Vec::new())));
        };
        if first.1.is_none() && Some(first.0.as_str()) == start_field {
            let start: usize = map.next_value()?;
            let _end_field: Option<String> = map.next_key()?;
            let end: usize = map.next_value()?;
            let _value_field: Option<String> = map.next_key()?;
            let node = map.next_value_seed(NodeSeed { proto: self.proto })?;
            return Ok((Some(start..end.max(start)), node));
        }
        let mut entries = vec![entry(first, &mut map, self.proto)?];
        while let Some(key) = map.next_key_seed(KeySeed { proto: self.proto })? {
            entries.push(entry(key, &mut map, self.proto)?);
        }
        Ok((None, Node::Table(entries)))
    }
}

/// Deserializes a table key with its span, where the parser knows it.
#[derive(Clone, Copy)]
struct KeySeed {
    proto: Option<SpanProtocol>,
}

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = (String, Option<Range<usize>>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.proto {
            Some(p) => d.deserialize_struct(p.name, p.fields, self),
            None => String::deserialize(d).map(|k| (k, None)),
        }
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = (String, Option<Range<usize>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((v.to_string(), None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let _start_field: Option<String> = map.next_key()?;
        let start: usize = map.next_value()?;
        let _end_field: Option<String> = map.next_key()?;
        let end: usize = map.next_value()?;
        let _value_field: Option<String> = map.next_key()?;
        let key: String = map.next_value()?;
        Ok((key, Some(start..end.max(start))))
    }
}

/// Where an error's span points.
enum Hit {
    /// At the key `key` of the table at `table`.
    Key { table: String, key: String },
    /// At the value (or table) at this path.
    Value(String),
}

fn contains(span: &Option<Range<usize>>, pos: usize) -> bool {
    span.as_ref().is_some_and(|s| s.contains(&pos) || (s.is_empty() && s.start == pos))
}

fn join(path: &str, key: &str) -> String {
    let key = if !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

impl Node {
    /// The deepest key or value whose span holds `pos`.
    fn find(&self, path: &str, pos: usize) -> Option<Hit> {
        match self {
            Node::Leaf => None,
            Node::Array(items) => items.iter().enumerate().find_map(|(i, (span, node))| {
                let child = format!("{path}[{i}]");
                node.find(&child, pos).or_else(|| contains(span, pos).then_some(Hit::Value(child)))
            }),
            Node::Table(entries) => entries.iter().find_map(|e| {
                if contains(&e.key_span, pos) {
                    return Some(Hit::Key { table: path.to_string(), key: e.key.clone() });
                }
                let child = join(path, &e.key);
                e.value
                    .find(&child, pos)
                    .or_else(|| contains(&e.value_span, pos).then_some(Hit::Value(child)))
            }),
        }
    }
}

/// A parsed file's span tree and text.
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) root: Node,
    pub(super) lines: Lines,
    /// The text, to tell a date-time from a table in "invalid type: map" errors.
    pub(super) text: String,
}

/// One step of a key path.
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// Splits `workload.messages[2].size` into steps (keys never contain `.` or `[` here).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next() {
            if !key.is_empty() {
                out.push(Step::Key(key));
            }
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

impl Tree {
    /// Whether the value at `span` looks like a TOML date or time (not a table).
    fn is_date_at(&self, span: Option<Range<usize>>) -> bool {
        span.and_then(|s| self.text.get(s.start..))
            .and_then(|t| t.chars().next())
            .is_some_and(|c| c.is_ascii_digit())
    }

    /// The line of the deepest existing prefix of `path` (a key's line; an array element's
    /// first line); 1 when not even the first step exists.
    pub(super) fn line_of(&self, path: &str) -> usize {
        let mut node = &self.root;
        let mut offset = None;
        for step in steps(path) {
            let next = match (step, node) {
                (Step::Key(k), Node::Table(entries)) => entries
                    .iter()
                    .find(|e| e.key == k)
                    .map(|e| (e.key_span.as_ref().or(e.value_span.as_ref()), &e.value)),
                (Step::Index(i), Node::Array(items)) => {
                    items.get(i).map(|(span, n)| (span.as_ref(), n))
                }
                _ => None,
            };
            match next {
                Some((span, n)) => {
                    if let Some(span) = span {
                        offset = Some(span.start);
                    }
                    node = n;
                }
                None => break,
            }
        }
        offset.map_or(1, |o| self.lines.of(o))
    }

    pub(super) fn field_error(&self, file: &str, e: FieldError) -> ScenarioError {
        let line = self.line_of(&e.key);
        ScenarioError::new(file, Some(line), ErrorKind::Invalid, Some(e.key), e.message)
    }

    /// A serde error of the typed pass, located and reworded.
    pub(super) fn serde_error(&self, file: &str, e: &toml::de::Error) -> ScenarioError {
        let message = e.message().trim();
        let hit = e.span().and_then(|s| self.root.find("", s.start));
        let line = e.span().map_or(1, |s| self.lines.of(s.start));
        let table_name = |table: &str| {
            if table.is_empty() {
                "the top-level table".to_string()
            } else {
                format!("[{table}]")
            }
        };
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let (table, key) = match hit {
                Some(Hit::Key { table, key }) => (table, key),
                Some(Hit::Value(path)) => (path, String::new()),
                None => (String::new(), String::new()),
            };
            let (field, expected) = rest.split_once(", ").unwrap_or((rest, ""));
            let expected = if let Some(list) = expected.strip_prefix("expected ") {
                format!(" (expected {list})")
            } else {
                String::new()
            };
            let message = format!("unknown key {field} in {}{expected}", table_name(&table));
            let path = if key.is_empty() { table } else { join(&table, &key) };
            return ScenarioError::new(
                file,
                Some(line),
                ErrorKind::UnknownKey,
                Some(path),
                message,
            );
        }
        if let Some(field) = message.strip_prefix("missing field ") {
            // The span is the table's: an array element or inline table, or for the top-level
            // table its first key.
            let table = match hit {
                Some(Hit::Value(path)) => path,
                Some(Hit::Key { table, .. }) => table,
                None => String::new(),
            };
            let line = if table.is_empty() { 1 } else { line };
            let key = join(&table, field.trim_matches('`'));
            let message = format!("missing key {field} in {}", table_name(&table));
            return ScenarioError::new(file, Some(line), ErrorKind::MissingKey, Some(key), message);
        }
        let key = match hit {
            Some(Hit::Value(path)) => Some(path),
            Some(Hit::Key { table, key }) => Some(join(&table, &key)),
            None => None,
        };
        let message = match message.strip_prefix("unknown variant ") {
            Some(rest) => match rest.split_once(", expected ") {
                Some((value, list)) => format!("unknown value {value} (expected {list})"),
                None => format!("unknown value {rest}"),
            },
            None => friendly(message, self.is_date_at(e.span())),
        };
        ScenarioError::new(file, Some(line), ErrorKind::BadValue, key, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Tree {
        Tree { root: parse_tree(text).unwrap(), lines: Lines::new(text), text: text.to_string() }
    }

    #[test]
    fn line_of_finds_keys_tables_and_elements() {
        let text = "name = \"a\"\n\n[workload]\nbuffers = 2\n\n[[workload.messages]]\nsize = 1\n\
                    [[workload.messages]]\nsize = 2\n\n[[fault]]\nkind = \"munmap\"\n";
        let t = tree(text);
        assert_eq!(t.line_of("name"), 1);
        assert_eq!(t.line_of("workload"), 3);
        assert_eq!(t.line_of("workload.buffers"), 4);
        assert_eq!(t.line_of("workload.messages[1].size"), 9);
        assert_eq!(t.line_of("workload.messages[1]"), 8);
        assert_eq!(t.line_of("fault[0].buffer"), 11);
        assert_eq!(t.line_of("memory.mem_mib"), 1);
    }

    #[test]
    fn the_span_protocol_is_learnt() {
        let p = SpanProtocol::learn().unwrap();
        assert_eq!(p.fields.len(), 3);
        assert!(!p.start_field().is_empty());
    }

    #[test]
    fn dates_are_leaves() {
        let t = tree("a = 1979-05-27T07:32:00Z\nb = { c = 1979-05-27 }\n");
        assert_eq!(t.line_of("a"), 1);
        assert!(matches!(t.root.find("", 4), Some(Hit::Value(p)) if p == "a"));
    }

    #[test]
    fn steps_split_paths() {
        let s = steps("workload.messages[2].size");
        assert!(matches!(
            s.as_slice(),
            [Step::Key("workload"), Step::Key("messages"), Step::Index(2), Step::Key("size")]
        ));
    }
}
