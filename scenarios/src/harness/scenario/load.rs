//! Reading scenario files: TOML → [`Scenario`], with one-line errors naming the file, the line
//! and the key.
//!
//! A file is parsed twice: once into a span tree ([`super::spans`]: every key and value with its byte
//! range, no schema), which only fails on TOML syntax, and once into the typed [`Scenario`]
//! with serde. Errors of the second pass and of [`Scenario::validate`] are located with the
//! tree: a serde error's span names the key or value it is about, a validation error's key path
//! names the entry whose line is reported.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::schema::Scenario;
use super::spans::{parse_tree, Lines, Tree};
use super::validate::FieldError;

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
    pub(super) fn new(
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
pub(super) fn friendly(message: &str, is_date: bool) -> String {
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
pub(super) fn one_line(s: &str) -> String {
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
