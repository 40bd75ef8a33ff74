//! Reading scenario files: TOML → [`Scenario`], with one-line errors naming the file, the line
//! and the key.
//!
//! A file is parsed twice: once into a span tree ([`Node`]: every key and value with its byte
//! range, no schema), which only fails on TOML syntax, and once into the typed [`Scenario`]
//! with serde. Errors of the second pass and of [`Scenario::validate`] are located with the
//! tree: a serde error's span names the key or value it is about, a validation error's key path
//! names the entry whose line is reported.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::schema::{FieldError, Scenario};

/// What kind of problem a [`ScenarioError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file or directory could not be read (or is not UTF-8).
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key the schema does not have.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong type or not one of the allowed names or forms.
    BadValue,
    /// A value out of range or a broken cross-field rule ([`Scenario::validate`]).
    Invalid,
    /// Two files of one directory define the same scenario name.
    DuplicateName,
}

/// Why a scenario file was rejected. `Display` is one line:
/// `<file>:<line>: <key>: <message>` (the key is left out where the message names it, the line
/// where there is none, e.g. for I/O errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    line: Option<usize>,
    kind: ErrorKind,
    key: Option<String>,
    message: String,
}

impl ScenarioError {
    fn new(
        file: &str,
        line: Option<usize>,
        kind: ErrorKind,
        key: Option<String>,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            file: one_line(file),
            line,
            kind,
            key: key.map(|k| one_line(&k)),
            message: one_line(&message),
        }
    }

    /// The file (as given to [`load_file`] / [`parse_str`]).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Dotted key path (`workload.messages[0].size`, `fault[1].buffer`; for an unknown key, the
    /// path of that key), when known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The message without file, line and key.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let show_key = !matches!(self.kind, ErrorKind::UnknownKey | ErrorKind::MissingKey);
        match &self.key {
            Some(key) if show_key && !key.is_empty() => write!(f, ": {key}: {}", self.message),
            _ => write!(f, ": {}", self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and checks one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    load_with_tree(path).map(|(scenario, _)| scenario)
}

/// Parses and checks scenario text; `file` names it in errors.
pub fn parse_str(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    parse_with_tree(text, file).map(|(scenario, _)| scenario)
}

/// Reads every `*.toml` file directly in `dir` (not recursively), sorted by file name; the
/// first bad file (in that order) is the error, as is a scenario name defined twice.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, ScenarioError> {
    let dir_name = dir.display().to_string();
    let io = |e: std::io::Error| {
        ScenarioError::new(&dir_name, None, ErrorKind::Io, None, format!("cannot read: {e}"))
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let (scenario, tree) = load_with_tree(&path)?;
        if let Some(first) = seen.get(&scenario.name) {
            return Err(ScenarioError::new(
                &path.display().to_string(),
                Some(tree.line_of("name")),
                ErrorKind::DuplicateName,
                Some("name".to_string()),
                format!("scenario name `{}` is already used by {}", scenario.name, first.display()),
            ));
        }
        seen.insert(scenario.name.clone(), path.clone());
        out.push((path, scenario));
    }
    Ok(out)
}

fn load_with_tree(path: &Path) -> Result<(Scenario, Tree), ScenarioError> {
    let (text, file) = read_text(path)?;
    parse_with_tree(&text, &file)
}

/// Reads a UTF-8 text file; returns the text and the file's name for errors.
pub(crate) fn read_text(path: &Path) -> Result<(String, String), ScenarioError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        ScenarioError::new(&file, None, ErrorKind::Io, None, format!("cannot read: {e}"))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes().iter().take(valid).filter(|&&b| b == b'\n').count() + 1;
        ScenarioError::new(&file, Some(line), ErrorKind::Io, None, "not valid UTF-8".to_string())
    })?;
    Ok((text, file))
}

/// Parses TOML `text` into any `T` with the same one-line `file:line: key: message` errors as
/// scenario files (unknown keys, bad values, missing keys), then runs `check`, whose
/// [`FieldError`] key is located in the file, and returns what it made (other files of the
/// crate, e.g. study files).
pub(crate) fn parse_checked<T: serde::de::DeserializeOwned, U>(
    text: &str,
    file: &str,
    check: impl FnOnce(&T) -> Result<U, FieldError>,
) -> Result<U, ScenarioError> {
    parse_typed(text, file, check).map(|(_, checked, _)| checked)
}

fn parse_with_tree(text: &str, file: &str) -> Result<(Scenario, Tree), ScenarioError> {
    parse_typed(text, file, Scenario::validate).map(|(scenario, (), tree)| (scenario, tree))
}

fn parse_typed<T: serde::de::DeserializeOwned, U>(
    text: &str,
    file: &str,
    check: impl FnOnce(&T) -> Result<U, FieldError>,
) -> Result<(T, U, Tree), ScenarioError> {
    let lines = Lines::new(text);
    let root = parse_tree(text).map_err(|e| {
        let line = e.span().map_or(1, |s| lines.of(s.start));
        let detail: Vec<&str> =
            e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let message = format!("TOML syntax error: {}", detail.join("; "));
        ScenarioError::new(file, Some(line), ErrorKind::Syntax, None, message)
    })?;
    let tree = Tree { root, lines, text: text.to_string() };
    let value = toml::from_str::<T>(text).map_err(|e| tree.serde_error(file, &e))?;
    let checked = check(&value).map_err(|e| tree.field_error(file, e))?;
    Ok((value, checked, tree))
}

/// serde's Rust-flavoured type names in TOML words.
fn friendly(message: &str, is_date: bool) -> String {
    let found = if is_date { "invalid type: date-time," } else { "invalid type: table," };
    let mut out = message
        .replace("invalid type: map,", found)
        .replace("invalid type: sequence,", "invalid type: array,")
        .replace("expected a sequence", "expected an array");
    for (rust, toml) in [
        ("expected u8", "expected an integer in 0..=255"),
        ("expected u16", "expected an integer in 0..=65535"),
        ("expected u32", "expected an integer in 0..=4294967295"),
        ("expected u64", "expected a non-negative integer"),
    ] {
        if let Some(head) = out.strip_suffix(rust) {
            out = format!("{head}{toml}");
        }
    }
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a table");
    }
    out
}

/// `s` with every control character escaped, so that it fits on one line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Byte offset → 1-based line: the offsets of every `\n` of the text.
#[derive(Clone, Debug)]
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect())
    }

    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Any TOML value, with the spans of its keys and elements.
#[derive(Debug)]
enum Node {
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
struct Entry {
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
fn parse_tree(text: &str) -> Result<Node, toml::de::Error> {
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
struct Tree {
    root: Node,
    lines: Lines,
    /// The text, to tell a date-time from a table in "invalid type: map" errors.
    text: String,
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
    fn line_of(&self, path: &str) -> usize {
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

    fn field_error(&self, file: &str, e: FieldError) -> ScenarioError {
        let line = self.line_of(&e.key);
        ScenarioError::new(file, Some(line), ErrorKind::Invalid, Some(e.key), e.message)
    }

    /// A serde error of the typed pass, located and reworded.
    fn serde_error(&self, file: &str, e: &toml::de::Error) -> ScenarioError {
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
