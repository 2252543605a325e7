//! PDF pages with a small layout of our own over krilla (issue 28): the bundled font and its
//! metrics, text measured and wrapped the Japanese way, and frames of drawing operations that
//! a [`Writer`] places on paper. Layout is plain data ([`Frame`], [`Op`]), so the documents'
//! page breaks are tested without a PDF; only [`Writer`] knows krilla.
//!
//! The font is IPAexゴシック, shipped in `assets/fonts` with its licence and compiled into the
//! binary: no system font is read at run time. krilla embeds only the glyphs used (subset).
//! A character the font lacks (an emoji, say) is printed as 〓 (geta, the typesetter's mark for
//! a missing character), never as an empty box.

use std::{collections::HashMap, sync::OnceLock};

use chrono::{DateTime, Datelike, Timelike, Utc};
use krilla::{
    Document,
    color::{luma, rgb},
    geom::{PathBuilder, Point, Rect},
    metadata::Metadata,
    num::NormalizedF32,
    page::PageSettings,
    paint::{Fill, Stroke},
    text::{Font, GlyphId, KrillaGlyph},
};
use skrifa::{
    MetadataProvider,
    instance::{LocationRef, Size},
};

/// IPAexゴシック 004.01 (IPA Font License v1.0, `assets/fonts/IPA_Font_License_Agreement_v1.0.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/ipaexg.ttf");

/// What is printed for a character the font does not have.
pub const SUBSTITUTE: char = '〓';

/// The bundled font: krilla's handle and, per character, its glyph and advance (in em).
pub struct Face {
    font: Font,
    glyphs: HashMap<char, (u32, f32)>,
    ascent: f32,
}

impl Face {
    /// The one face, loaded once per process.
    pub fn get() -> &'static Face {
        static FACE: OnceLock<Face> = OnceLock::new();
        FACE.get_or_init(|| {
            let font = Font::new(FONT_BYTES.into(), 0).expect("the bundled font is a font");
            let f = skrifa::FontRef::new(FONT_BYTES).expect("the bundled font is a font");
            let metrics = f.metrics(Size::unscaled(), LocationRef::default());
            let upem = f32::from(metrics.units_per_em);
            let advances = f.glyph_metrics(Size::unscaled(), LocationRef::default());
            let glyphs = f
                .charmap()
                .mappings()
                .filter_map(|(cp, gid)| {
                    let c = char::from_u32(cp)?;
                    Some((c, (gid.to_u32(), advances.advance_width(gid).unwrap_or(0.0) / upem)))
                })
                .collect();
            Face { font, glyphs, ascent: metrics.ascent / upem }
        })
    }

    pub fn has(&self, c: char) -> bool {
        self.glyphs.contains_key(&c)
    }

    fn glyph(&self, c: char) -> (u32, f32) {
        self.glyphs.get(&c).or_else(|| self.glyphs.get(&SUBSTITUTE)).copied().unwrap_or((0, 1.0))
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.glyph(c).1).sum::<f32>() * size
    }

    /// `text` as it will be printed on one line: control characters become spaces, a
    /// character the font lacks becomes [`SUBSTITUTE`] (a variation selector or a joiner that
    /// belongs to the character before it is dropped with it).
    pub fn printable(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() {
                out.push(' ');
            } else if self.has(c) {
                out.push(c);
            } else if matches!(c, '\u{200d}' | '\u{fe00}'..='\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}' | '\u{e0100}'..='\u{e01ef}')
            {
                // Part of the character before it (an emoji sequence): already substituted.
            } else {
                out.push(SUBSTITUTE);
            }
        }
        out
    }

    /// `text` broken into lines no wider than `width` at `size`: at newlines, and otherwise
    /// between any two characters except inside a run of Latin letters and digits (a word or
    /// a code breaks at its spaces, or anywhere when it alone is too long). A closing mark
    /// (、。」) and the like) never starts a line: it stays at the end of the line before.
    pub fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let chars: Vec<char> = self.printable(paragraph.trim_end_matches('\r')).chars().collect();
            let mut start = 0;
            while start < chars.len() {
                let mut used = 0.0;
                let mut end = start;
                let mut last_break = None;
                while end < chars.len() {
                    let w = self.glyph(chars[end]).1 * size;
                    if used + w > width && end > start && !no_line_start(chars[end]) {
                        break;
                    }
                    used += w;
                    end += 1;
                    if end < chars.len() && may_break_between(chars[end - 1], chars[end]) {
                        last_break = Some(end);
                    }
                }
                if let Some(b) = last_break.filter(|b| end < chars.len() && *b > start) {
                    end = b;
                }
                let line: String = chars[start..end].iter().collect();
                lines.push(line.trim_end().to_owned());
                start = end;
                while start < chars.len() && chars[start] == ' ' {
                    start += 1;
                }
            }
            if chars.is_empty() {
                lines.push(String::new());
            }
        }
        lines
    }

    /// `text` cut to `width` with 「…」 when it is longer.
    pub fn fit(&self, text: &str, size: f32, width: f32) -> String {
        let text = self.printable(text);
        if self.width(&text, size) <= width {
            return text;
        }
        let room = width - self.width("…", size);
        let mut used = 0.0;
        let mut out = String::new();
        for c in text.chars() {
            used += self.glyph(c).1 * size;
            if used > room {
                break;
            }
            out.push(c);
        }
        out.push('…');
        out
    }
}

/// 行頭禁則: characters that may not begin a line.
fn no_line_start(c: char) -> bool {
    "、。，．,.)）]］}｝」』】〕〉》〙〗・：；:;！？!?ー…‥々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ％%"
        .contains(c)
}

/// 行末禁則 and words: may a line end between `a` and `b`?
fn may_break_between(a: char, b: char) -> bool {
    if "（(［[｛{「『【〔〈《〘〖".contains(a) || no_line_start(b) {
        return false;
    }
    let word = |c: char| c.is_ascii_alphanumeric() || "-_/.#&+@'".contains(c);
    !(word(a) && word(b))
}

/// One drawing operation in a frame's coordinates (points, origin at the top left).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Text whose line box starts at `top`; `gray` 0 is black.
    Text {
        x: f32,
        top: f32,
        size: f32,
        text: String,
        gray: u8,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    Shade {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: u8,
    },
}

/// What goes in one region of paper (a page, or half of an A4 sheet).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub ops: Vec<Op>,
}

impl Frame {
    pub fn text(&mut self, x: f32, top: f32, size: f32, text: &str) {
        self.text_gray(x, top, size, text, 0);
    }

    pub fn text_gray(&mut self, x: f32, top: f32, size: f32, text: &str, gray: u8) {
        if !text.is_empty() {
            self.ops.push(Op::Text { x, top, size, text: Face::get().printable(text), gray });
        }
    }

    /// Text ending at `right`.
    pub fn text_right(&mut self, right: f32, top: f32, size: f32, text: &str) {
        let w = Face::get().width(&Face::get().printable(text), size);
        self.text(right - w, top, size, text);
    }

    pub fn text_center(&mut self, center: f32, top: f32, size: f32, text: &str) {
        let w = Face::get().width(&Face::get().printable(text), size);
        self.text(center - w / 2.0, top, size, text);
    }

    pub fn hline(&mut self, x1: f32, x2: f32, y: f32, width: f32) {
        self.ops.push(Op::Line { x1, y1: y, x2, y2: y, width });
    }

    pub fn vline(&mut self, x: f32, y1: f32, y2: f32, width: f32) {
        self.ops.push(Op::Line { x1: x, y1, x2: x, y2, width });
    }

    pub fn shade(&mut self, x: f32, y: f32, w: f32, h: f32, gray: u8) {
        self.ops.push(Op::Shade { x, y, w, h, gray });
    }

    /// Every text of the frame, in drawing order (tests read pages with it).
    pub fn texts(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// The paper a document is printed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paper {
    /// A4 portrait, one slip per page (the default).
    A4,
    /// A5 portrait.
    A5,
    /// A4 portrait cut in two: two A5-landscape slips per sheet.
    A4Two,
}

const A4: (f32, f32) = (595.28, 841.89);
const A5: (f32, f32) = (419.53, 595.28);

impl Paper {
    pub const ALL: [Paper; 3] = [Paper::A4, Paper::A5, Paper::A4Two];

    pub fn as_str(self) -> &'static str {
        match self {
            Paper::A4 => "a4",
            Paper::A5 => "a5",
            Paper::A4Two => "a4x2",
        }
    }

    pub fn parse(s: &str) -> Option<Paper> {
        Paper::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Paper::A4 => "A4縦（1枚に1件）",
            Paper::A5 => "A5縦",
            Paper::A4Two => "A4縦に2件（A5横×2、中央で切り離し）",
        }
    }

    fn page(self) -> (f32, f32) {
        match self {
            Paper::A4 | Paper::A4Two => A4,
            Paper::A5 => A5,
        }
    }

    /// The size of one region: what a frame is laid out for.
    pub fn region(self) -> (f32, f32) {
        match self {
            Paper::A4 | Paper::A5 => self.page(),
            Paper::A4Two => (A4.0, A4.1 / 2.0),
        }
    }

    fn regions_per_page(self) -> usize {
        if self == Paper::A4Two { 2 } else { 1 }
    }
}

/// A PDF being written: frames go in one by one and become pages; the document's bytes come
/// out of [`Writer::finish`]. krilla serialises each page's content when the page is done, so
/// what stays in memory is compressed page streams, not laid-out documents.
pub struct Writer {
    doc: Document,
    paper: Paper,
    waiting: Vec<Frame>,
    pages: usize,
}

impl Writer {
    /// `created` is the document's creation date (the batch's time): the same batch gives the
    /// same file.
    pub fn new(paper: Paper, title: &str, created: DateTime<Utc>) -> Writer {
        let mut doc = Document::new();
        let jst = created.with_timezone(&crate::domain::jst::offset());
        let date = krilla::metadata::DateTime::new(u16::try_from(jst.year()).unwrap_or(2000))
            .month(jst.month() as u8)
            .day(jst.day() as u8)
            .hour(jst.hour() as u8)
            .minute(jst.minute() as u8)
            .second(jst.second() as u8)
            .utc_offset_hour(9)
            .utc_offset_minute(0);
        doc.set_metadata(
            Metadata::new()
                .title(title.to_owned())
                .creator("orderdesk".into())
                .producer("orderdesk (krilla)".into())
                .language("ja".into())
                .creation_date(date),
        );
        Writer { doc, paper, waiting: Vec::new(), pages: 0 }
    }

    /// Adds one region's content; a page is drawn when its regions are full.
    pub fn push(&mut self, frame: Frame) {
        self.waiting.push(frame);
        if self.waiting.len() == self.paper.regions_per_page() {
            self.flush();
        }
    }

    /// Pages drawn so far.
    pub fn pages(&self) -> usize {
        self.pages + usize::from(!self.waiting.is_empty())
    }

    fn flush(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let (w, h) = self.paper.page();
        let settings = PageSettings::from_wh(w, h).expect("paper sizes are positive");
        let mut page = self.doc.start_page_with(settings);
        let mut surface = page.surface();
        let face = Face::get();
        let (_, region_h) = self.paper.region();
        let two = self.paper.regions_per_page() > 1;
        for (i, frame) in self.waiting.drain(..).enumerate() {
            let dy = region_h * i as f32;
            for op in &frame.ops {
                match op {
                    Op::Text { x, top, size, text, gray } => {
                        let mut glyphs = Vec::with_capacity(text.len() / 3 + 1);
                        for (at, c) in text.char_indices() {
                            let (gid, advance) = face.glyph(c);
                            glyphs.push(KrillaGlyph::new(
                                GlyphId::new(gid),
                                advance,
                                0.0,
                                0.0,
                                0.0,
                                at..at + c.len_utf8(),
                                None,
                            ));
                        }
                        surface.set_fill(Some(Fill {
                            paint: luma::Color::new(*gray).into(),
                            opacity: NormalizedF32::ONE,
                            rule: Default::default(),
                        }));
                        let baseline = dy + top + size * face.ascent;
                        surface.draw_glyphs(
                            Point::from_xy(*x, baseline),
                            &glyphs,
                            face.font.clone(),
                            text,
                            *size,
                            false,
                        );
                    }
                    Op::Line { x1, y1, x2, y2, width } => {
                        let mut pb = PathBuilder::new();
                        pb.move_to(*x1, dy + y1);
                        pb.line_to(*x2, dy + y2);
                        if let Some(path) = pb.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(Stroke {
                                paint: rgb::Color::black().into(),
                                width: *width,
                                ..Stroke::default()
                            }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                    Op::Shade { x, y, w, h, gray } => {
                        let mut pb = PathBuilder::new();
                        if let Some(rect) = Rect::from_xywh(*x, dy + y, *w, *h) {
                            pb.push_rect(rect);
                        }
                        if let Some(path) = pb.finish() {
                            surface.set_stroke(None);
                            surface.set_fill(Some(Fill {
                                paint: luma::Color::new(*gray).into(),
                                opacity: NormalizedF32::ONE,
                                rule: Default::default(),
                            }));
                            surface.draw_path(&path);
                        }
                    }
                }
            }
        }
        if two {
            // The cut line between the two slips.
            let mut pb = PathBuilder::new();
            let mut x = 10.0;
            while x < w - 10.0 {
                pb.move_to(x, region_h);
                pb.line_to((x + 4.0).min(w - 10.0), region_h);
                x += 8.0;
            }
            if let Some(path) = pb.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: luma::Color::new(150).into(),
                    width: 0.5,
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
            }
        }
        surface.finish();
        page.finish();
        self.pages += 1;
    }

    /// The PDF's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        self.flush();
        if self.pages == 0 {
            // A PDF has at least one page; callers never ask for an empty document, but an
            // empty page is better than a broken file.
            let (w, h) = self.paper.page();
            let page = self.doc.start_page_with(PageSettings::from_wh(w, h).expect("positive"));
            page.finish();
        }
        self.doc.finish().map_err(|e| format!("PDF: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_has_japanese_and_a_substitute_for_what_it_lacks() {
        let face = Face::get();
        assert!(face.has('納') && face.has('※') && face.has(SUBSTITUTE) && face.has('A'));
        assert!(!face.has('😀'));
        assert_eq!(face.printable("タオル😀セット"), "タオル〓セット");
        // An emoji sequence (with a joiner and a variation selector) is one mark per emoji.
        assert_eq!(face.printable("❤️"), if face.has('❤') { "❤" } else { "〓" });
        assert_eq!(face.printable("a\tb"), "a b");
        // Full-width characters are one em; Latin is narrower.
        assert!((face.width("納品書", 10.0) - 30.0).abs() < 0.01);
        assert!(face.width("abc", 10.0) < 30.0);
    }

    #[test]
    fn japanese_wraps_anywhere_latin_at_spaces_and_no_line_starts_with_a_closing_mark() {
        let face = Face::get();
        let lines = face.wrap("今治タオル バスタオル 2枚セット（ホワイト）、贈り物にも。", 10.0, 60.0);
        assert!(lines.len() > 1, "{lines:?}");
        for l in &lines {
            assert!(face.width(l, 10.0) <= 60.0 + 10.0, "{l}");
            assert!(!l.starts_with(['、', '。', '）']), "{lines:?}");
        }
        assert_eq!(lines.concat().replace(' ', ""), "今治タオルバスタオル2枚セット（ホワイト）、贈り物にも。");
        // A code is not cut while it fits on a line of its own.
        let lines = face.wrap("品番 ABCDEFG-12345 です", 10.0, 100.0);
        assert!(lines.iter().any(|l| l.contains("ABCDEFG-12345")), "{lines:?}");
        // Newlines are kept; an empty paragraph is an empty line.
        assert_eq!(face.wrap("一行目\n\n三行目", 10.0, 200.0), vec!["一行目", "", "三行目"]);
        // A word longer than the line is cut where it must be.
        let lines = face.wrap(&"X".repeat(100), 10.0, 50.0);
        assert!(lines.len() > 5 && lines.iter().all(|l| face.width(l, 10.0) <= 50.0));
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        let face = Face::get();
        assert_eq!(face.fit("短い", 10.0, 100.0), "短い");
        let cut = face.fit(&"長".repeat(50), 10.0, 100.0);
        assert!(cut.ends_with('…') && face.width(&cut, 10.0) <= 100.0);
    }

    #[test]
    fn a_document_is_a_pdf_with_the_font_subset() {
        let mut w = Writer::new(Paper::A4Two, "テスト", Utc::now());
        for i in 0..3 {
            let mut f = Frame::default();
            f.text(40.0, 40.0, 12.0, &format!("納品書 {i} 😀"));
            f.hline(40.0, 300.0, 60.0, 0.5);
            f.shade(40.0, 70.0, 100.0, 10.0, 230);
            w.push(f);
        }
        assert_eq!(w.pages(), 2);
        let pdf = w.finish().unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // The whole font is 6 MB; a subset of a few glyphs is far smaller.
        assert!(pdf.len() < 200_000, "{} bytes", pdf.len());
    }
}
