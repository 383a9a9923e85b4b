//! YAML with positions: a tree whose every node knows its line and column, and a serde
//! deserializer over it whose errors point at the node that was wrong.
//!
//! Every file glidepath reads (pipelines, smoke suites, SLO files, manifests, themes) goes
//! through here, so "file:line:col: what was wrong, what was expected" is the same
//! everywhere. Scalars are typed by the YAML 1.2 core schema only when the target type asks
//! for "anything"; a `String` field takes `1.10` as the text `1.10`, not a float.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::scanner::Marker;

use crate::input::Limits;

mod build;

/// A file that could not be loaded (a pipeline, an SLO file, a theme...): where, and what
/// was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file at fault (the pipeline or a file it references).
    pub file: PathBuf,
    /// Line and column, when the error concerns a place in the file.
    pub pos: Option<Pos>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.col,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Pos {
    /// Line, counted from 1.
    pub line: usize,
    /// Column, counted from 1.
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub value: Value,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar with its source text; `plain` is false for quoted and block scalars.
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order; keys are unique (checked at parse time).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for `~`, `null`, `Null`, `NULL` and the empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null_text(text))
    }

    /// The value under `key`, if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable access to the value under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Visits every scalar of the tree, keys excluded, with its position.
    pub fn scalars_mut(
        &mut self,
        f: &mut dyn FnMut(&mut String, bool, Pos) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match &mut self.value {
            Value::Scalar { text, plain } => f(text, *plain, self.pos),
            Value::Seq(items) => items.iter_mut().try_for_each(|n| n.scalars_mut(f)),
            Value::Map(entries) => entries.iter_mut().try_for_each(|(_, v)| v.scalars_mut(f)),
        }
    }

    /// Converts to JSON, typing plain scalars by the YAML 1.2 core schema.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar { text, plain: false } => serde_json::Value::String(text.clone()),
            Value::Scalar { text, plain: true } => plain_to_json(text),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn plain_to_json(text: &str) -> serde_json::Value {
    match resolve_plain(text) {
        Plain::Null => serde_json::Value::Null,
        Plain::Bool(b) => serde_json::Value::Bool(b),
        Plain::Int(i) => serde_json::Value::from(i),
        Plain::UInt(u) => serde_json::Value::from(u),
        Plain::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(text.to_owned())),
        Plain::Str => serde_json::Value::String(text.to_owned()),
    }
}

enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str,
}

fn resolve_plain(text: &str) -> Plain {
    if is_null_text(text) {
        return Plain::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Plain::Int(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Plain::UInt(u);
    }
    let numeric = text
        .trim_start_matches(['-', '+'])
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.');
    if numeric && let Ok(f) = text.parse::<f64>() {
        return Plain::Float(f);
    }
    Plain::Str
}

/// An error with the position it concerns, when one is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where in the source the error is.
    pub pos: Option<Pos>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl Error {
    /// An error at a known position.
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        Error {
            pos: Some(pos),
            message: message.into(),
        }
    }
}

impl Error {
    /// This error in `file`: shown as `file:line:col: message`.
    pub fn in_file(self, file: impl Into<PathBuf>) -> LoadError {
        LoadError {
            file: file.into(),
            pos: self.pos,
            message: self.message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            pos: None,
            message: msg.to_string(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut message = format!("unknown field `{field}`");
        if let Some(best) = closest(field, expected) {
            message.push_str(&format!(", did you mean `{best}`?"));
        }
        if expected.is_empty() {
            message.push_str("; no fields are allowed here");
        } else {
            message.push_str(&format!("; expected one of {}", backticked(expected)));
        }
        Error::custom(message)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut message = format!("unknown value `{variant}`");
        if let Some(best) = closest(variant, expected) {
            message.push_str(&format!(", did you mean `{best}`?"));
        }
        message.push_str(&format!("; expected one of {}", backticked(expected)));
        Error::custom(message)
    }

    fn missing_field(field: &'static str) -> Self {
        Error::custom(format!("missing required field `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::custom(format!("field `{field}` is given twice"))
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses every document of a YAML stream within [`Limits::DEFAULT`] (README, "Input
/// limits"). Duplicate mapping keys are errors; a leading byte-order mark is skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, Error> {
    build::parse_documents_with(text, &Limits::DEFAULT)
}

pub use build::parse_documents_with;

/// Parses a stream that must hold exactly one document.
pub fn parse_one(text: &str) -> Result<Node, Error> {
    let mut docs = parse_documents(text)?;
    match docs.len() {
        0 => Err(Error::at(
            Pos { line: 1, col: 1 },
            "the file is empty; expected a YAML document",
        )),
        1 => Ok(docs.remove(0)),
        _ => Err(Error::at(
            docs[1].pos,
            "a second YAML document starts here; this file must hold exactly one",
        )),
    }
}

/// Deserializes a `T` from a node; errors carry the position of the node at fault.
pub fn from_node<'de, T: serde::Deserialize<'de>>(node: &'de Node) -> Result<T, Error> {
    T::deserialize(node)
}

/// Parses one document and deserializes it.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    let node = parse_one(text)?;
    T::deserialize(&node)
}

/// The struct name [`Spanned`] asks for; the deserializer answers it with the position.
const SPANNED: &str = "$glidepath::Spanned";
const SPANNED_FIELDS: &[&str] = &["$line", "$col", "$value"];

/// A value together with where it was written.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    /// Where the value starts in the source.
    pub pos: Pos,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// A value with no meaningful position (built in code, not read from a file).
    pub fn detached(value: T) -> Self {
        Spanned {
            pos: Pos::default(),
            value,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: serde::Serialize> serde::Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Spanned<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut line = 0;
                let mut col = 0;
                let mut value = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "$line" => line = map.next_value()?,
                        "$col" => col = map.next_value()?,
                        _ => value = Some(map.next_value()?),
                    }
                }
                let value = value.ok_or_else(|| de::Error::custom("missing value"))?;
                Ok(Spanned {
                    pos: Pos { line, col },
                    value,
                })
            }
        }
        d.deserialize_struct(SPANNED, SPANNED_FIELDS, V(std::marker::PhantomData))
    }
}

impl<'de> serde::Deserializer<'de> for &'de Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let r = match &self.value {
            Value::Scalar { text, plain: false } => v.visit_str(text),
            Value::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => v.visit_unit(),
                Plain::Bool(b) => v.visit_bool(b),
                Plain::Int(i) => v.visit_i64(i),
                Plain::UInt(u) => v.visit_u64(u),
                Plain::Float(f) => v.visit_f64(f),
                Plain::Str => v.visit_str(text),
            },
            Value::Seq(items) => v.visit_seq(SeqAccess { iter: items.iter() }),
            Value::Map(entries) => v.visit_map(MapAccess {
                iter: entries.iter(),
                value: None,
            }),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Bool(b) => self.locate(v.visit_bool(b)),
                _ => Err(self.expected("true or false")),
            },
            _ => Err(self.expected("true or false")),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.number(v)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar { text, .. } => self.locate(v.visit_str(text)),
            _ => Err(self.expected("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.is_null() {
            self.locate(v.visit_none())
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.is_null() {
            self.locate(v.visit_unit())
        } else {
            Err(self.expected("nothing (null)"))
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.locate(v.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Seq(items) => self.locate(v.visit_seq(SeqAccess { iter: items.iter() })),
            _ => Err(self.expected("a list")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Map(entries) => self.locate(v.visit_map(MapAccess {
                iter: entries.iter(),
                value: None,
            })),
            // An empty value where a mapping is expected reads as an empty mapping (`pause:`).
            _ if self.is_null() => self.locate(v.visit_map(MapAccess {
                iter: [].iter(),
                value: None,
            })),
            _ => Err(self.expected("a mapping (key: value)")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            return v.visit_map(SpannedAccess {
                node: self,
                step: 0,
            });
        }
        let _ = fields;
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar { .. } => self.locate(v.visit_enum(EnumAccess {
                tag: self,
                value: None,
            })),
            Value::Map(entries) if entries.len() == 1 => {
                let (k, val) = &entries[0];
                self.locate(v.visit_enum(EnumAccess {
                    tag: k,
                    value: Some(val),
                }))
            }
            _ => Err(self.expected("one of the allowed values")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

impl Node {
    /// Gives an error without a position this node's position.
    fn locate<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|mut e| {
            e.pos.get_or_insert(self.pos);
            e
        })
    }

    /// Describes what this node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Scalar { text, .. } if self.is_null() && text.is_empty() => "nothing".into(),
            Value::Scalar { text, .. } => format!("`{}`", truncate(text, 40)),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    fn expected(&self, what: &str) -> Error {
        Error::at(
            self.pos,
            format!("expected {what}, found {}", self.describe()),
        )
    }

    fn number<'de, V: Visitor<'de>>(&'de self, v: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Int(i) => self.locate(v.visit_i64(i)),
                Plain::UInt(u) => self.locate(v.visit_u64(u)),
                Plain::Float(f) => self.locate(v.visit_f64(f)),
                _ => Err(self.expected("a number")),
            },
            _ => Err(self.expected("a number")),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

struct SeqAccess<'de> {
    iter: std::slice::Iter<'de, Node>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.iter
            .next()
            .map(|n| n.locate(seed.deserialize(n)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAccess<'de> {
    iter: std::slice::Iter<'de, (Node, Node)>,
    value: Option<&'de Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                k.locate(seed.deserialize(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("value requested before key"))?;
        v.locate(seed.deserialize(v))
    }
}

struct SpannedAccess<'de> {
    node: &'de Node,
    step: usize,
}

impl<'de> de::MapAccess<'de> for SpannedAccess<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match SPANNED_FIELDS.get(self.step) {
            Some(name) => seed.deserialize((*name).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize((self.node.pos.line as u64).into_deserializer()),
            2 => seed.deserialize((self.node.pos.col as u64).into_deserializer()),
            _ => seed.deserialize(self.node),
        }
    }
}

struct EnumAccess<'de> {
    tag: &'de Node,
    value: Option<&'de Node>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = Error;
    type Variant = VariantAccess<'de>;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Error> {
        let tag = self.tag.locate(seed.deserialize(self.tag))?;
        Ok((
            tag,
            VariantAccess {
                tag: self.tag,
                value: self.value,
            },
        ))
    }
}

struct VariantAccess<'de> {
    tag: &'de Node,
    value: Option<&'de Node>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(v) if v.is_null() => Ok(()),
            Some(v) => Err(v.expected("no value")),
        }
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        match self.value {
            Some(v) => v.locate(seed.deserialize(v)),
            None => Err(self.tag.expected("a value for this option")),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        match self.value {
            Some(n) => serde::Deserializer::deserialize_seq(n, v),
            None => Err(self.tag.expected("a list")),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(n) => serde::Deserializer::deserialize_map(n, v),
            None => Err(self.tag.expected("a mapping")),
        }
    }
}

/// Writes JSON as block-style YAML (for files people read: rules, manifests).
pub fn to_yaml_string(value: &serde_json::Value) -> String {
    fn convert(v: &serde_json::Value) -> yaml_rust2::Yaml {
        use yaml_rust2::Yaml;
        match v {
            serde_json::Value::Null => Yaml::Null,
            serde_json::Value::Bool(b) => Yaml::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            serde_json::Value::String(s) => Yaml::String(s.clone()),
            serde_json::Value::Array(a) => Yaml::Array(a.iter().map(convert).collect()),
            serde_json::Value::Object(o) => Yaml::Hash(
                o.iter()
                    .map(|(k, v)| (Yaml::String(k.clone()), convert(v)))
                    .collect(),
            ),
        }
    }
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    if emitter.dump(&convert(value)).is_err() {
        return value.to_string();
    }
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_owned();
    body + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn unknown_field_points_at_key_and_suggests() {
        let err = from_str::<Thing>("name: a\ncuont: 3\n").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, col: 1 }));
        assert_eq!(
            err.message,
            "unknown field `cuont`, did you mean `count`?; expected one of `name`, `count`, `tags`"
        );
    }

    #[test]
    fn wrong_type_points_at_value() {
        let err = from_str::<Thing>("name: a\ncount: many\n").unwrap_err();
        assert_eq!(err.to_string(), "2:8: expected a number, found `many`");
    }

    #[test]
    fn missing_field_points_at_mapping() {
        let err = from_str::<Thing>("\ncount: 1\n").unwrap_err();
        assert_eq!(err.to_string(), "2:1: missing required field `name`");
    }

    #[test]
    fn plain_number_reads_as_string_where_a_string_is_wanted() {
        let t: Thing = from_str("name: 1.10\ncount: 7\ntags: [1, yes]\n").unwrap();
        assert_eq!(t.name, "1.10");
        assert_eq!(t.count, 7);
        assert_eq!(t.tags, vec!["1", "yes"]);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_one("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "3:1: duplicate key `a` (first given on line 1)"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_one("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.is_some());
        assert!(
            err.message.starts_with("this is not valid YAML"),
            "{}",
            err.message
        );
    }

    #[test]
    fn spanned_records_position() {
        #[derive(Deserialize)]
        struct S {
            x: Spanned<String>,
        }
        let s: S = from_str("\n  x: hello\n").unwrap();
        assert_eq!(s.x.pos, Pos { line: 2, col: 6 });
        assert_eq!(s.x.value, "hello");
    }

    #[test]
    fn anchors_and_json() {
        let node = parse_one("a: &x {b: 1, c: [true, null, '2', 2.5]}\nd: *x\n").unwrap();
        let json = node.to_json();
        assert_eq!(json["d"], json["a"]);
        assert_eq!(json["a"]["c"], serde_json::json!([true, null, "2", 2.5]));
    }
}
