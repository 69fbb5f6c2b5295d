//! YAML to JSON with positions: every document of a stream becomes a `serde_json::Value`
//! plus the line and column of each field (by field path, `spec.containers[0].image`), so
//! decoding and validation errors can point into the file.
//!
//! Scalars resolve as the YAML library behind kubectl does (YAML 1.1 booleans such as `yes`
//! and `on`, `~` and `null`, integers and floats); quoted and block scalars stay strings.
//! Duplicate keys are errors, as they are for the API server.
//!
//! Input is bounded as go-yaml bounds it for kubectl: control characters are refused, and
//! a document whose aliases expand to too much ("billion laughs") is an error, by go-yaml's
//! ratio of alias-expanded nodes to all nodes ([`allowed_alias_ratio`]). The text itself
//! ([`MAX_TEXT`]) and the scalar bytes a document expands to ([`MAX_EXPANDED`]) are capped.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::field::{child, index};

mod explain;
mod scalar;

use explain::explain;
use scalar::resolve;

/// A place in the text: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// The text is not YAML (or not YAML that maps to JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}: {message}", pos.line)]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// One document of a YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDocument {
    /// The document as JSON (`Null` for an empty document).
    pub value: Value,
    /// Where the document starts.
    pub start: Pos,
    positions: HashMap<String, Pos>,
}

impl YamlDocument {
    /// Where the field at `path` is (its key, for mapping members), or the nearest enclosing
    /// field that exists in the text (a missing field points at its parent).
    pub fn position(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.positions.get("").copied().unwrap_or(self.start),
            }
        }
    }
}

/// The largest manifest text berth reads (the API server takes 3 MiB per object).
pub const MAX_TEXT: usize = 32 << 20;

/// The most scalar bytes one document may expand to through aliases.
pub const MAX_EXPANDED: u64 = 64 << 20;

/// How deeply mappings and sequences may nest (go-yaml v3 stops at 10,000; the JSON
/// decoders behind typed objects recurse, so berth stops sooner).
pub const MAX_DEPTH: usize = 1000;

/// The most nodes one document may copy when anchoring (each anchor keeps a copy of its
/// node for its aliases).
const MAX_ANCHORED: u64 = 4_000_000;

/// The share of a document's nodes that may come from alias expansion, by how many nodes
/// were decoded: go-yaml's limits (yaml.v2 2.2.4 and v3, CVE-2019-11253): 99% up to 400,000
/// nodes, falling linearly to 10% at 4,000,000.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// The first character YAML does not allow in a stream (its `c-printable` set: tab, line
/// feed, carriage return, printable ASCII, NEL and most of Unicode), with its position.
fn control_character(text: &str) -> Option<(char, Pos)> {
    let mut pos = Pos { line: 1, col: 1 };
    for c in text.chars() {
        let printable = matches!(c,
            '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
                | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        if !printable {
            return Some((c, pos));
        }
        if c == '\n' {
            pos = Pos {
                line: pos.line + 1,
                col: 1,
            };
        } else {
            pos.col += 1;
        }
    }
    None
}

/// Parses every document of `text`.
pub fn parse_documents(text: &str) -> Result<Vec<YamlDocument>, YamlError> {
    if text.len() > MAX_TEXT {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!("manifest text larger than {MAX_TEXT} bytes"),
        });
    }
    if let Some((c, pos)) = control_character(text) {
        return Err(YamlError {
            pos,
            message: format!(
                "control characters are not allowed (U+{:04X} at column {})",
                c as u32, pos.col
            ),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Events one at a time, not `Parser::load`, which recurses once per nesting level
    // (a deeply nested document would overflow the stack before the depth check).
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| explain(text, Pos::from(*e.marker()), e.info()))?;
        let end = event == Event::StreamEnd;
        builder.on_event(event, mark);
        if let Some(e) = builder.error {
            return Err(e);
        }
        if end {
            return Ok(builder.docs);
        }
    }
}

enum Frame {
    Map {
        map: Map<String, Value>,
        path: String,
        key: Option<String>,
        anchor: usize,
        key_lines: HashMap<String, usize>,
        size: Size,
    },
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
        size: Size,
    },
}

/// How much a node is: itself and every node and scalar byte under it.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: u64,
    bytes: u64,
}

impl Size {
    fn grow(&mut self, by: Size) {
        self.nodes += by.nodes;
        self.bytes += by.bytes;
    }
}

#[derive(Default)]
struct Builder {
    docs: Vec<YamlDocument>,
    stack: Vec<Frame>,
    positions: HashMap<String, Pos>,
    anchors: HashMap<usize, (Value, Size)>,
    /// Nodes and bytes of the current document, and nodes that came from aliases.
    decoded: Size,
    aliased: u64,
    anchored: u64,
    start: Pos,
    root: Option<Value>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message });
        }
    }

    /// The path the next node gets, given what is on the stack.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { path, key, .. }) => {
                key.as_deref().map_or_else(String::new, |k| child(path, k))
            }
            Some(Frame::Seq { items, path, .. }) => index(path, items.len()),
        }
    }

    /// Records where a node starts unless it is a mapping value (whose key was recorded).
    fn record(&mut self, pos: Pos) {
        let is_value = matches!(self.stack.last(), Some(Frame::Map { key: Some(_), .. }));
        if !is_value {
            let path = self.next_path();
            self.positions.entry(path).or_insert(pos);
        }
    }

    fn add(&mut self, value: Value, pos: Pos, anchor: usize, size: Size) {
        if anchor > 0 {
            self.anchored += size.nodes;
            if self.anchored > MAX_ANCHORED {
                self.fail(
                    pos,
                    format!("document anchors more than {MAX_ANCHORED} nodes"),
                );
                return;
            }
            self.anchors.insert(anchor, (value.clone(), size));
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(value);
            return;
        };
        match top {
            Frame::Seq { items, size: s, .. } => {
                s.grow(size);
                items.push(value)
            }
            Frame::Map {
                map,
                path,
                key,
                key_lines,
                size: s,
                ..
            } => match key.take() {
                Some(k) => {
                    s.grow(size);
                    map.insert(k, value);
                }
                None => {
                    s.grow(size);
                    let k = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Array(_) | Value::Object(_) => {
                            let at = path.clone();
                            self.fail(
                                pos,
                                format!(
                                    "{}: mapping keys must be strings, not lists or mappings",
                                    display_path(&at)
                                ),
                            );
                            return;
                        }
                    };
                    if let Some(first) = key_lines.get(&k) {
                        let message =
                            format!("mapping key \"{k}\" already defined at line {first}");
                        self.fail(pos, message);
                        return;
                    }
                    key_lines.insert(k.clone(), pos.line);
                    let field = child(path, &k);
                    self.positions.insert(field, pos);
                    *key = Some(k);
                }
            },
        }
    }
}

impl Builder {
    /// Counts `size` more decoded nodes (from an alias or not); false, with the error
    /// recorded, when the document now aliases excessively or expands past [`MAX_EXPANDED`].
    fn count(&mut self, size: Size, from_alias: bool, pos: Pos) -> bool {
        self.decoded.grow(size);
        if from_alias {
            self.aliased += size.nodes;
        }
        let (decoded, aliased) = (self.decoded.nodes, self.aliased);
        if aliased > 100
            && decoded > 1000
            && aliased as f64 / decoded as f64 > allowed_alias_ratio(decoded)
        {
            self.fail(pos, "document contains excessive aliasing".to_string());
            return false;
        }
        if self.decoded.bytes > MAX_EXPANDED {
            self.fail(
                pos,
                format!("document expands to more than {MAX_EXPANDED} bytes"),
            );
            return false;
        }
        true
    }
}

fn display_path(p: &str) -> &str {
    if p.is_empty() {
        "<root>"
    } else {
        p
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from(mark);
        match ev {
            Event::DocumentStart => {
                self.positions.clear();
                self.anchors.clear();
                self.decoded = Size::default();
                self.aliased = 0;
                self.anchored = 0;
                self.start = pos;
                self.root = None;
            }
            Event::DocumentEnd => {
                self.docs.push(YamlDocument {
                    value: self.root.take().unwrap_or(Value::Null),
                    start: self.start,
                    positions: std::mem::take(&mut self.positions),
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.record(pos);
                let value = resolve(&text, style, tag.as_ref());
                let size = Size {
                    nodes: 1,
                    bytes: text.len() as u64,
                };
                if self.count(size, false, pos) {
                    self.add(value, pos, anchor, size);
                }
            }
            Event::Alias(id) => {
                self.record(pos);
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    self.fail(pos, "alias to an unknown anchor".to_string());
                    return;
                };
                // Counted before the copy is made, so a bomb fails before it allocates.
                if self.count(size, true, pos) {
                    if let Some((v, _)) = self.anchors.get(&id).cloned() {
                        self.add(v, pos, 0, size);
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
            }
            Event::MappingStart(anchor, _) => {
                self.record(pos);
                let path = self.next_path();
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    path,
                    key: None,
                    anchor,
                    key_lines: HashMap::new(),
                    size: Size::default(),
                });
            }
            Event::SequenceStart(anchor, _) => {
                self.record(pos);
                let path = self.next_path();
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    path,
                    anchor,
                    size: Size::default(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let own = Size { nodes: 1, bytes: 0 };
                if !self.count(own, false, pos) {
                    return;
                }
                match self.stack.pop() {
                    Some(Frame::Map {
                        map,
                        anchor,
                        mut size,
                        ..
                    }) => {
                        size.grow(own);
                        self.add(Value::Object(map), pos, anchor, size)
                    }
                    Some(Frame::Seq {
                        items,
                        anchor,
                        mut size,
                        ..
                    }) => {
                        size.grow(own);
                        self.add(Value::Array(items), pos, anchor, size)
                    }
                    None => self.fail(pos, "unbalanced mapping or sequence end".to_string()),
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_and_positions() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - containerPort: 80\n---\n---\nkind: Service\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(
            docs[0].value["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        assert_eq!(docs[0].position("spec.containers[0].image").line, 8);
        assert_eq!(
            docs[0].position("spec.containers[0].image"),
            Pos { line: 8, col: 5 }
        );
        assert_eq!(docs[0].position("spec.containers[0]").line, 7);
        assert_eq!(
            docs[0]
                .position("spec.containers[0].ports[0].containerPort")
                .line,
            10
        );
        // A field that is not in the text points at its parent.
        assert_eq!(
            docs[0].position("spec.containers[0].resources.limits").line,
            7
        );
        assert_eq!(docs[1].value, Value::Null);
        assert_eq!(docs[2].value, json!({"kind": "Service"}));
        assert_eq!(docs[2].position("kind").line, 13);
    }

    #[test]
    fn scalars_resolve_as_kubectl() {
        let docs = parse_documents(
            "a: yes\nb: 'yes'\nc: 010\nd: 0x1f\ne: 1.5\nf: ~\ng: \"8000\"\nh: 1e3\ni: hello world\nj: |\n  text\nk: !!str 12\nl: -3\n",
        )
        .unwrap();
        let v = &docs[0].value;
        assert_eq!(v["a"], json!(true));
        assert_eq!(v["b"], json!("yes"));
        assert_eq!(v["c"], json!(8));
        assert_eq!(v["d"], json!(31));
        assert_eq!(v["e"], json!(1.5));
        assert_eq!(v["f"], Value::Null);
        assert_eq!(v["g"], json!("8000"));
        assert_eq!(v["h"], json!(1000.0));
        assert_eq!(v["i"], json!("hello world"));
        assert_eq!(v["j"], json!("text\n"));
        assert_eq!(v["k"], json!("12"));
        assert_eq!(v["l"], json!(-3));
    }

    #[test]
    fn json_is_yaml() {
        let docs =
            parse_documents("{\"kind\": \"Pod\", \"spec\": {\"containers\": [{\"name\": \"c\"}]}}")
                .unwrap();
        assert_eq!(docs[0].value["spec"]["containers"][0]["name"], "c");
    }

    #[test]
    fn anchors_and_aliases() {
        let docs = parse_documents("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(docs[0].value["b"], json!({"k": "v"}));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert_eq!(e.message, "mapping key \"a\" already defined at line 1");
    }

    #[test]
    fn missing_colon_is_named() {
        let text =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec\n  containers:\n  - name: c\n";
        let e = parse_documents(text).unwrap_err();
        assert_eq!(e.pos.line, 5, "{e}");
        assert_eq!(e.message, "missing ':' after \"spec\" (write \"spec:\")");
        let e = parse_documents("apiVersion: v1\nkind Pod\nmetadata:\n  name: p\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e}");
        assert!(e.message.contains("missing ':' in \"kind Pod\""), "{e}");
    }

    #[test]
    fn other_syntax_errors_keep_the_position() {
        let e = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e}");
        let e = parse_documents("a:\n\t- b\n").unwrap_err();
        assert!(e.message.contains("tabs"), "{e}");
    }

    /// The classic "billion laughs": nine levels of nine aliases each.
    fn laughs(levels: usize) -> String {
        let mut text = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for l in 1..=levels {
            let refs = vec![format!("*a{}", l - 1); 9].join(",");
            text.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn alias_bomb_is_refused_as_go_yaml_does() {
        let err = parse_documents(&laughs(9)).unwrap_err();
        assert_eq!(err.message, "document contains excessive aliasing");
        // A few levels are fine: modest alias use is normal YAML.
        let docs = parse_documents(&laughs(2)).unwrap();
        assert_eq!(docs[0].value["a2"][8][8][8], "lol");
    }

    #[test]
    fn alias_ratio_follows_go_yaml() {
        assert_eq!(allowed_alias_ratio(1000), 0.99);
        assert_eq!(allowed_alias_ratio(4_000_000), 0.10);
        let mid = allowed_alias_ratio(2_200_000);
        assert!((mid - 0.545).abs() < 1e-9, "{mid}");
    }

    #[test]
    fn aliases_of_big_scalars_are_capped_by_bytes() {
        let big = "x".repeat(1 << 20);
        let mut text = format!("s: &s \"{big}\"\nl: [");
        text.push_str(&vec!["*s"; 100].join(","));
        text.push_str("]\n");
        let err = parse_documents(&text).unwrap_err();
        assert_eq!(err.message, "document expands to more than 67108864 bytes");
    }

    #[test]
    fn control_characters_are_refused_with_their_place() {
        let err = parse_documents("\u{1}\u{2}apiVersion: v1\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 1 });
        assert_eq!(
            err.message,
            "control characters are not allowed (U+0001 at column 1)"
        );
        let err = parse_documents("kind: Pod\nmetadata:\n  name: a\u{7f}\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 10 });
        // Tabs, CRLF, a BOM and non-ASCII text are allowed.
        assert!(parse_documents("\u{feff}a: \"\tb\"\r\nc: é\n").is_ok());
    }

    #[test]
    fn deep_nesting_and_huge_text_are_refused() {
        // Block nesting (flow nesting stops at the parser's own limit).
        let deep = format!("{}x\n", "- ".repeat(5000));
        let err = parse_documents(&deep).unwrap_err();
        assert_eq!(err.message, "nesting deeper than 1000 levels");
        let huge = " ".repeat(MAX_TEXT + 1);
        let err = parse_documents(&huge).unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
    }

    mod properties {
        use super::super::parse_documents;
        use proptest::prelude::*;

        fn yamlish() -> impl Strategy<Value = String> {
            let parts = prop::sample::select(vec![
                "a", "b: ", "- ", "  ", "\n", ": ", "&x ", "*x", "&y ", "*y", "[", "]", "{", "}",
                ",", "\"", "'", "|", ">", "---\n", "...\n", "#", "!!str ", "!t ", "? ", "1",
                "0x1f", "yes", "~", "\t", "\r", "é", "<<: *x\n",
            ]);
            prop::collection::vec(parts, 0..80).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn yaml_loading_never_panics(text in yamlish()) {
                let _ = parse_documents(&text);
            }

            #[test]
            fn any_text_never_panics(text in "\\PC{0,300}") {
                let _ = parse_documents(&text);
            }
        }
    }
}
