//! Builds [`Node`] trees from parser events, one event at a time and without recursion, so
//! that no document can overflow the stack, and within [`Limits`]: nesting depth, nodes,
//! alias uses and what they copy, text, and time.

use std::collections::HashMap;
use std::time::Instant;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Error, Node, Pos, Value};
use crate::input::Limits;

/// Parses every document of a YAML stream within `limits`. Duplicate mapping keys are errors.
pub fn parse_documents_with(text: &str, limits: &Limits) -> Result<Vec<Node>, Error> {
    let text = crate::input::strip_bom(text);
    let started = Instant::now();
    let mut builder = Builder::new(*limits);
    let mut parser = Parser::new_from_str(text);
    let mut events: u64 = 0;
    loop {
        let (ev, mark) = parser.next_token().map_err(syntax_error)?;
        if ev == Event::StreamEnd {
            break;
        }
        builder.on_event(ev, mark)?;
        events += 1;
        if events % 1024 == 0 && started.elapsed() > limits.time {
            return Err(Error::at(
                Pos::from(mark),
                format!(
                    "reading stopped here: parsing took longer than the limit of {} s; split the file or simplify it",
                    limits.time.as_secs_f64()
                ),
            ));
        }
    }
    Ok(builder.documents)
}

/// The scanner's own limit on `[` and `{` inside each other, which it reaches first when
/// brackets are nested: it reads ahead over them before the parser reports any.
const SCANNER_FLOW_DEPTH: usize = 255;

fn syntax_error(e: yaml_rust2::ScanError) -> Error {
    let pos = Pos::from(*e.marker());
    // yaml-rust2 gives this error no kind of its own, only this text.
    if e.info() == "recursion limit exceeded" {
        return Error::at(
            pos,
            format!(
                "brackets `[` and braces `{{` are nested deeper than the limit of {SCANNER_FLOW_DEPTH} levels here; flatten the document"
            ),
        );
    }
    Error::at(pos, format!("this is not valid YAML: {}", e.info()))
}

/// What a node costs: nodes and bytes of scalar text, its children and alias copies included.
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    nodes: usize,
    text: usize,
}

enum Frame {
    /// A list being built, its anchor, and the counters when it started.
    Seq(Node, usize, Weight),
    /// A mapping being built, its anchor and the counters when it started.
    Map(Node, usize, Weight, MapKeys),
}

/// The keys of a mapping being built: the one waiting for its value, and the scalar keys
/// seen so far with their lines, so a duplicate is found without scanning every entry.
#[derive(Default)]
struct MapKeys {
    pending: Option<Node>,
    seen: HashMap<(String, bool), usize>,
}

struct Builder {
    limits: Limits,
    stack: Vec<Frame>,
    documents: Vec<Node>,
    anchors: HashMap<usize, (Node, Weight)>,
    /// Everything built so far, alias copies included.
    spent: Weight,
    aliases: usize,
    alias_nodes: usize,
}

impl Builder {
    fn new(limits: Limits) -> Self {
        Builder {
            limits,
            stack: Vec::new(),
            documents: Vec::new(),
            anchors: HashMap::new(),
            spent: Weight::default(),
            aliases: 0,
            alias_nodes: 0,
        }
    }

    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), Error> {
        let pos = Pos::from(mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, TScalarStyle::Plain);
                let weight = Weight {
                    nodes: 1,
                    text: text.len(),
                };
                self.charge(weight, pos)?;
                let node = Node {
                    pos,
                    value: Value::Scalar { text, plain },
                };
                self.push_value(node, anchor, weight)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                let node = Node {
                    pos,
                    value: Value::Seq(Vec::new()),
                };
                self.stack.push(Frame::Seq(node, anchor, self.spent));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                let node = Node {
                    pos,
                    value: Value::Map(Vec::new()),
                };
                self.stack
                    .push(Frame::Map(node, anchor, self.spent, MapKeys::default()));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor, start) | Frame::Map(node, anchor, start, _)) => {
                    let weight = Weight {
                        nodes: self.spent.nodes - start.nodes,
                        text: self.spent.text - start.text,
                    };
                    self.push_value(node, anchor, weight)
                }
                None => Ok(()),
            },
            Event::Alias(id) => self.alias(id, pos),
            Event::DocumentEnd => {
                self.anchors.clear();
                Ok(())
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => Ok(()),
        }
    }

    /// Starts a list or mapping, one level deeper, and counts it.
    fn open(&mut self, pos: Pos) -> Result<(), Error> {
        if self.stack.len() >= self.limits.depth {
            return Err(Error::at(
                pos,
                format!(
                    "lists and mappings are nested deeper than the limit of {} levels here; flatten the document",
                    self.limits.depth
                ),
            ));
        }
        self.charge(Weight { nodes: 1, text: 0 }, pos)
    }

    /// Counts what a new node (or copy) costs, refusing it past the file's limits.
    fn charge(&mut self, w: Weight, pos: Pos) -> Result<(), Error> {
        let nodes = self.spent.nodes.saturating_add(w.nodes);
        if nodes > self.limits.nodes {
            return Err(Error::at(
                pos,
                format!(
                    "the file holds more than the limit of {} nodes (values, lists and mappings, alias copies included); split it into smaller files",
                    self.limits.nodes
                ),
            ));
        }
        let text = self.spent.text.saturating_add(w.text);
        if text > self.limits.text_bytes {
            return Err(Error::at(
                pos,
                format!(
                    "the file holds more than the limit of {} of text (alias copies included); split it into smaller files",
                    crate::input::show_size(self.limits.text_bytes as u64)
                ),
            ));
        }
        self.spent = Weight { nodes, text };
        Ok(())
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), Error> {
        let Some((anchored, weight)) = self.anchors.get(&id) else {
            return Err(Error::at(pos, "alias to an unknown anchor"));
        };
        let (value, weight) = (anchored.value.clone(), *weight);
        self.aliases += 1;
        if self.aliases > self.limits.aliases {
            return Err(Error::at(
                pos,
                format!(
                    "the file uses more than the limit of {} aliases (`*name`); repeat less, or split the file",
                    self.limits.aliases
                ),
            ));
        }
        self.alias_nodes = self.alias_nodes.saturating_add(weight.nodes);
        if self.alias_nodes > self.limits.alias_nodes {
            return Err(Error::at(
                pos,
                format!(
                    "this alias expands the document past the limit of {} nodes copied by aliases (aliases of aliases multiply, as in a \"billion laughs\" document); use fewer or smaller aliases",
                    self.limits.alias_nodes
                ),
            ));
        }
        self.charge(weight, pos)?;
        self.push_value(Node { pos, value }, 0, weight)
    }

    fn push_value(&mut self, node: Node, anchor: usize, weight: Weight) -> Result<(), Error> {
        if anchor > 0 {
            // The anchor table holds a copy: it costs what the node does.
            self.charge(weight, node.pos)?;
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq(seq, ..)) => {
                // Block collections are reported by the parser after their first entry;
                // a collection starts where its first entry does, if that is earlier.
                seq.pos = earlier(seq.pos, node.pos);
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, _, keys)) => match keys.pending.take() {
                None => {
                    map.pos = earlier(map.pos, node.pos);
                    if let Value::Scalar { text, plain } = &node.value {
                        let line = node.pos.line;
                        if let Some(first_line) = keys.seen.insert((text.clone(), *plain), line) {
                            return Err(Error::at(
                                node.pos,
                                format!(
                                    "duplicate key `{text}` (first given on line {first_line})"
                                ),
                            ));
                        }
                    }
                    keys.pending = Some(node);
                }
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

fn earlier(a: Pos, b: Pos) -> Pos {
    if (b.line, b.col) < (a.line, a.col) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse_documents, parse_one};

    fn nested(open: &str, n: usize) -> String {
        open.repeat(n)
    }

    #[test]
    fn deep_block_lists_stop_at_the_depth_limit() {
        // The 40 KB file: `- - - ...`, each entry a list holding the next.
        let err = parse_documents(&"- ".repeat(20_000)).unwrap_err();
        assert_eq!(err.pos.map(|p| p.col), Some(257));
        let text: String = (0..200)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        let err = parse_documents(&text).unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(129));
        assert!(
            err.message.contains("limit of 128 levels"),
            "{}",
            err.message
        );
    }

    #[test]
    fn deep_flow_collections_stop_at_the_depth_limit() {
        for open in ["[", "{", "[{", "{a: ["] {
            let err = parse_documents(&nested(open, 20_000)).unwrap_err();
            assert!(
                err.message.contains("limit of 255 levels")
                    || err.message.contains("limit of 128 levels"),
                "{open}: {}",
                err.message
            );
        }
        let ok = format!("{}{}", nested("[", 128), nested("]", 128));
        assert!(parse_one(&ok).is_ok());
        let deep = format!("{}{}", nested("[", 129), nested("]", 129));
        let err = parse_one(&deep).unwrap_err();
        assert!(
            err.message.contains("limit of 128 levels"),
            "{}",
            err.message
        );
    }

    /// A "billion laughs" document: each level lists the one before nine times.
    fn laughs(levels: usize) -> String {
        let mut s = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let prev = format!("*l{}", i - 1);
            let items = [prev.as_str(); 9].join(", ");
            s.push_str(&format!("l{i}: &l{i} [{items}]\n"));
        }
        s
    }

    #[test]
    fn billion_laughs_is_refused_before_it_grows() {
        for levels in [7, 9] {
            let err = parse_one(&laughs(levels)).unwrap_err();
            assert!(
                err.message
                    .contains("limit of 100000 nodes copied by aliases"),
                "{levels}: {}",
                err.message
            );
        }
        // Four levels copy 9 + 90 + 819 nodes: well within the limits.
        let node = parse_one(&laughs(4)).unwrap();
        assert_eq!(node.to_json()["l3"][8][8][8][8], "lol");
    }

    #[test]
    fn every_limit_fires_with_its_value() {
        let tight = Limits {
            depth: 3,
            nodes: 20,
            aliases: 2,
            alias_nodes: 4,
            text_bytes: 20,
            time: std::time::Duration::from_secs(5),
        };
        let msg = |text: &str| parse_documents_with(text, &tight).unwrap_err().message;
        assert!(msg("[[[[1]]]]").contains("limit of 3 levels"));
        assert!(msg(&format!("[{}]", vec!["1"; 20].join(","))).contains("limit of 20 nodes"));
        assert!(msg("a: &a 1\nb: *a\nc: *a\nd: *a\n").contains("limit of 2 aliases"));
        assert!(msg("a: &a [1, 2, 3]\nb: [*a, *a]\n").contains("limit of 4 nodes copied"));
        assert!(msg("a: 0123456789012345678901234\n").contains("limit of 20 bytes of text"));
        let slow = Limits {
            time: std::time::Duration::ZERO,
            ..Limits::DEFAULT
        };
        let many = "- 1\n".repeat(2000);
        let err = parse_documents_with(&many, &slow).unwrap_err();
        assert!(err.message.contains("parsing took longer than the limit"));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let node = parse_one("\u{feff}name: x\n").unwrap();
        assert_eq!(node.get("name").and_then(Node::as_str), Some("x"));
    }

    #[test]
    fn duplicate_keys_are_found_in_large_mappings() {
        let mut text: String = (0..50_000).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k7: again\n");
        let err = parse_one(&text).unwrap_err();
        assert_eq!(err.message, "duplicate key `k7` (first given on line 8)");
    }
}
