//! Yahoo's XML, both ways: a small element tree read with `quick-xml` (for request bodies in the
//! simulator and response bodies in the client) and a writer that escapes every value.
//!
//! The reader is strict about structure (one root, matching end tags, bounded depth and size) and
//! tolerant about content: CDATA and escaped text read the same, empty elements read as empty
//! text, unknown elements are kept and simply not asked for, a namespace (`xmlns="urn:yahoo:api"`,
//! or a prefix) does not change an element's name. It never panics on any input.

use quick_xml::events::Event;

/// Deepest nesting accepted; Yahoo's documents are four or five levels deep.
const MAX_DEPTH: usize = 32;
/// Largest document accepted (an orderList page of 2,000 orders is well under this).
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the document is empty")]
    Empty,
    #[error("the document is too large")]
    TooLarge,
    #[error("the document is nested too deeply")]
    TooDeep,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// One element: its name, attributes, text (CDATA and text joined, entities resolved) and
/// child elements in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Parses a whole document and returns its root element.
    pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
        if input.len() > MAX_BYTES {
            return Err(XmlError::TooLarge);
        }
        let mut reader = quick_xml::Reader::from_reader(input);
        reader.config_mut().check_end_names = true;
        let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let event = reader.read_event_into(&mut buf).map_err(|e| malformed(&e))?;
            match event {
                Event::Start(start) => {
                    if root.is_some() {
                        return Err(XmlError::Malformed("content after the root element".into()));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    stack.push(open(&start).map_err(|e| malformed(&e))?);
                }
                Event::Empty(start) => {
                    let element = open(&start).map_err(|e| malformed(&e))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None if root.is_none() => root = Some(element),
                        None => return Err(XmlError::Malformed("content after the root element".into())),
                    }
                }
                Event::End(_) => {
                    let Some(mut done) = stack.pop() else {
                        return Err(XmlError::Malformed("unexpected end tag".into()));
                    };
                    if done.children.is_empty() {
                        // Leaf text is the value; keep it exactly (CDATA may carry spaces).
                    } else {
                        // Whitespace between child elements is layout, not content.
                        let trimmed = done.text.trim();
                        if trimmed.len() != done.text.len() {
                            done.text = trimmed.to_owned();
                        }
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = Some(done),
                    }
                }
                Event::Text(text) => {
                    let value = text.unescape().map_err(|e| malformed(&e))?;
                    match stack.last_mut() {
                        Some(current) => current.text.push_str(&value),
                        None if value.trim().is_empty() => {}
                        None => return Err(XmlError::Malformed("text outside the root element".into())),
                    }
                }
                Event::CData(data) => {
                    let value = std::str::from_utf8(&data).map_err(|e| malformed(&e))?;
                    match stack.last_mut() {
                        Some(current) => current.text.push_str(value),
                        None => return Err(XmlError::Malformed("CDATA outside the root element".into())),
                    }
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(XmlError::Malformed("DOCTYPE is not accepted".into())),
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(XmlError::Malformed("the document ends inside an element".into()));
        }
        root.ok_or(XmlError::Empty)
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this name (a list of one is simply one).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// A descendant by path of names, first match at each level.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |el, name| el.child(name))
    }

    /// A child's text, trimmed; `None` when the child is absent. An empty element gives `""`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// A child's text, trimmed, or `None` when absent or empty.
    pub fn value_of(&self, name: &str) -> Option<&str> {
        self.text_of(name).filter(|t| !t.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the typed readers of `yahoo::api` need of an element: its name, text and children.
/// [`Element`] owns everything; [`Node`] borrows its text from the document it was read from.
pub trait XmlNode: Sized {
    fn name(&self) -> &str;
    fn text(&self) -> &str;
    fn children(&self) -> &[Self];

    /// The first child with this name.
    fn child(&self, name: &str) -> Option<&Self> {
        self.children().iter().find(|c| c.name() == name)
    }

    /// Every child with this name (a list of one is simply one).
    fn children_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Self> + 's {
        self.children().iter().filter(move |c| c.name() == name)
    }

    /// A descendant by path of names, first match at each level.
    fn path(&self, names: &[&str]) -> Option<&Self> {
        names.iter().try_fold(self, |el, name| el.child(name))
    }

    /// A child's text, trimmed; `None` when the child is absent. An empty element gives `""`.
    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text().trim())
    }

    /// A child's text, trimmed, or `None` when absent or empty.
    fn value_of(&self, name: &str) -> Option<&str> {
        self.text_of(name).filter(|t| !t.is_empty())
    }
}

impl XmlNode for Element {
    fn name(&self) -> &str {
        &self.name
    }

    fn text(&self) -> &str {
        &self.text
    }

    fn children(&self) -> &[Element] {
        &self.children
    }
}

/// An element read without copying: text borrowed from the document (copied only when
/// entities are resolved or pieces joined), names among `names` kept, any other name read as
/// `""` (nobody asks for it). Read by the same rules as [`Element::parse`], so a document
/// reads the same either way; for hot paths that know which names they ask for (orderInfo,
/// thousands of answers a second in an import).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    pub name: &'static str,
    pub text: std::borrow::Cow<'a, str>,
    pub children: Vec<Node<'a>>,
}

impl XmlNode for Node<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn text(&self) -> &str {
        &self.text
    }

    fn children(&self) -> &[Self] {
        &self.children
    }
}

impl<'a> Node<'a> {
    /// Parses a whole document, keeping the names in `names` (sorted, for a binary search).
    pub fn parse(input: &'a [u8], names: &[&'static str]) -> Result<Node<'a>, XmlError> {
        use std::borrow::Cow;
        if input.len() > MAX_BYTES {
            return Err(XmlError::TooLarge);
        }
        let mut reader = quick_xml::Reader::from_reader(input);
        reader.config_mut().check_end_names = true;
        let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
        let open = |start: &quick_xml::events::BytesStart<'_>| -> Result<Node<'a>, XmlError> {
            let local = start.local_name();
            let local = std::str::from_utf8(local.as_ref()).map_err(|e| malformed(&e))?;
            for attr in start.attributes() {
                let attr = attr.map_err(|e| malformed(&e))?;
                std::str::from_utf8(attr.key.as_ref()).map_err(|e| malformed(&e))?;
                attr.unescape_value().map_err(|e| malformed(&e))?;
            }
            let name = names.binary_search(&local).map_or("", |i| names[i]);
            Ok(Node { name, text: Cow::Borrowed(""), children: Vec::new() })
        };
        let append = |text: &mut Cow<'a, str>, value: Cow<'a, str>| {
            if text.is_empty() {
                *text = value;
            } else {
                text.to_mut().push_str(&value);
            }
        };
        let mut stack: Vec<Node<'a>> = Vec::new();
        let mut root: Option<Node<'a>> = None;
        loop {
            match reader.read_event().map_err(|e| malformed(&e))? {
                quick_xml::events::Event::Start(start) => {
                    if root.is_some() {
                        return Err(XmlError::Malformed("content after the root element".into()));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    stack.push(open(&start)?);
                }
                quick_xml::events::Event::Empty(start) => {
                    let element = open(&start)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None if root.is_none() => root = Some(element),
                        None => return Err(XmlError::Malformed("content after the root element".into())),
                    }
                }
                quick_xml::events::Event::End(_) => {
                    let Some(mut done) = stack.pop() else {
                        return Err(XmlError::Malformed("unexpected end tag".into()));
                    };
                    if !done.children.is_empty() {
                        // Whitespace between child elements is layout, not content.
                        let trimmed = done.text.trim();
                        if trimmed.len() != done.text.len() {
                            done.text = Cow::Owned(trimmed.to_owned());
                        }
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = Some(done),
                    }
                }
                quick_xml::events::Event::Text(text) => {
                    let value = text.unescape().map_err(|e| malformed(&e))?;
                    match stack.last_mut() {
                        Some(current) => append(&mut current.text, value),
                        None if value.trim().is_empty() => {}
                        None => return Err(XmlError::Malformed("text outside the root element".into())),
                    }
                }
                quick_xml::events::Event::CData(data) => {
                    let value = match data.into_inner() {
                        Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).map_err(|e| malformed(&e))?),
                        Cow::Owned(b) => Cow::Owned(String::from_utf8(b).map_err(|e| malformed(&e))?),
                    };
                    match stack.last_mut() {
                        Some(current) => append(&mut current.text, value),
                        None => return Err(XmlError::Malformed("CDATA outside the root element".into())),
                    }
                }
                quick_xml::events::Event::Decl(_)
                | quick_xml::events::Event::Comment(_)
                | quick_xml::events::Event::PI(_) => {}
                quick_xml::events::Event::DocType(_) => {
                    return Err(XmlError::Malformed("DOCTYPE is not accepted".into()));
                }
                quick_xml::events::Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(XmlError::Malformed("the document ends inside an element".into()));
        }
        root.ok_or(XmlError::Empty)
    }
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    // The local name: Yahoo's answers name elements without a prefix, but `yahoo:Error` is
    // still an `Error`.
    let name = std::str::from_utf8(start.local_name().as_ref()).map_err(|e| e.to_string())?.to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(attr.key.as_ref()).map_err(|e| e.to_string())?.to_owned();
        let value = attr.unescape_value().map_err(|e| e.to_string())?.into_owned();
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, text: String::new(), children: Vec::new() })
}

/// Builds an XML document; every value is escaped, free text can go in CDATA.
#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter::with_capacity(1024)
    }

    pub fn with_capacity(bytes: usize) -> XmlWriter {
        let mut buf = String::with_capacity(bytes);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter { buf }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    pub fn open_with(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            escape_into(&mut self.buf, v);
            self.buf.push('"');
        }
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>value</name>`, or `<name/>` when the value is empty.
    pub fn leaf(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.empty(name);
        }
        self.open(name);
        escape_into(&mut self.buf, value);
        self.close(name)
    }

    /// `<name><![CDATA[value]]></name>`; a `]]>` inside the value is split across two sections.
    pub fn cdata(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.empty(name);
        }
        self.open(name);
        self.buf.push_str("<![CDATA[");
        self.buf.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
        self.buf.push_str("]]>");
        self.close(name)
    }

    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str("/>");
        self
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

fn escape_into(buf: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '&' => buf.push_str("&amp;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdata_empty_and_one_element_lists() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
            <ResultSet totalResultsAvailable="1"><Result><Status>OK</Status>
            <OrderInfo><OrderId>s-1</OrderId><BuyerComments><![CDATA[ <b>急ぎ</b> & ]]></BuyerComments>
            <Notes/><Title>A &amp; B</Title><Item><LineId>1</LineId></Item></OrderInfo></Result></ResultSet>"#;
        let root = Element::parse(doc.as_bytes()).unwrap();
        assert_eq!(root.attr("totalResultsAvailable"), Some("1"));
        let info = root.path(&["Result", "OrderInfo"]).unwrap();
        assert_eq!(info.text_of("BuyerComments"), Some("<b>急ぎ</b> &"));
        assert_eq!(info.text_of("Notes"), Some(""));
        assert_eq!(info.value_of("Notes"), None);
        assert_eq!(info.text_of("Title"), Some("A & B"));
        assert_eq!(info.children_named("Item").count(), 1);
        assert_eq!(info.text_of("Missing"), None);
    }

    #[test]
    fn reads_error_bodies_as_yahoo_writes_them() {
        // Declaration with `encoding="utf-8" ?`, the namespace, a CDATA message padded with
        // newlines, a Detail; with and without a byte-order mark; a prefixed root.
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<Error xmlns=\"urn:yahoo:api\">\n  <Message><![CDATA[\n    Invalid Request.\n  ]]></Message>\n  <Code>od00001</Code>\n  <Detail><![CDATA[OrderId is not specified]]></Detail>\n</Error>\n";
        for input in [
            doc.to_owned(),
            format!("\u{feff}{doc}"),
            doc.replace("<Error", "<y:Error").replace("</Error", "</y:Error").replace("xmlns=", "xmlns:y="),
        ] {
            let root = Element::parse(input.as_bytes()).unwrap_or_else(|e| panic!("{e}: {input}"));
            assert_eq!(root.name, "Error");
            assert_eq!(root.value_of("Message"), Some("Invalid Request."));
            assert_eq!(root.value_of("Code"), Some("od00001"));
            assert_eq!(root.value_of("Detail"), Some("OrderId is not specified"));
        }
        let padded = "<Error><Message>\n\nYour Request was Forbidden\n\n</Message></Error>";
        assert_eq!(Element::parse(padded.as_bytes()).unwrap().value_of("Message"), Some("Your Request was Forbidden"));
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [&b""[..], b"<a>", b"<a></b>", b"<a/><b/>", b"text", b"<a>&bogus;</a>", b"<!DOCTYPE x><a/>"] {
            assert!(Element::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(Element::parse(deep.as_bytes()), Err(XmlError::TooDeep));
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let mut w = XmlWriter::new();
        w.open_with("R", &[("n", "1\"<")]).leaf("A", "x<y&z").cdata("B", "a]]>b").empty("C").leaf("D", "").close("R");
        let root = Element::parse(w.finish().as_bytes()).unwrap();
        assert_eq!(root.attr("n"), Some("1\"<"));
        assert_eq!(root.text_of("A"), Some("x<y&z"));
        assert_eq!(root.text_of("B"), Some("a]]>b"));
        assert_eq!(root.text_of("C"), Some(""));
        assert_eq!(root.text_of("D"), Some(""));
    }

    #[test]
    fn never_panics_on_mangled_input() {
        // A cheap, deterministic fuzz: every prefix and many byte flips of a real document.
        let doc = br#"<Result><Status>OK</Status><Search><TotalCount>2</TotalCount><OrderInfo><Index>1</Index><OrderId><![CDATA[a-1]]></OrderId></OrderInfo></Search></Result>"#;
        for end in 0..doc.len() {
            let _ = Element::parse(&doc[..end]);
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut bytes = doc.to_vec();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let i = state as usize % bytes.len();
                bytes[i] = (state >> 8) as u8;
            }
            let _ = Element::parse(&bytes);
        }
    }
}
