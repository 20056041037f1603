//! The HTML page: plain, self-contained, readable without JavaScript; every user string escaped.

use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A table: header cells and rows of cells made by [`cell`] or [`number`].
pub struct Table {
    /// Header cells (plain text, escaped on output).
    pub header: Vec<String>,
    /// Rows of `<td>` elements.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Renders the table.
    pub fn html(&self) -> String {
        let mut s = String::from("<table>\n<thead><tr>");
        for h in &self.header {
            let _ = write!(s, "<th>{}</th>", escape(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            s.push_str("<tr>");
            for cell in row {
                s.push_str(cell);
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody>\n</table>\n");
        s
    }
}

/// A page under construction.
pub struct Page {
    body: String,
    title: String,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.92em;color:#444;margin-top:.3em}
.lead{font-size:1.08em;background:#f6f8fa;border-left:4px solid #0072b2;padding:.6em 1em}
td.amplifies,td.grows,td.missed,td.lowers{background:#fde0dd}td.cancels,td.shrinks,td.met,td.raises{background:#e5f5e0}
td.reverses{background:#fff3cd}td.collapsed,td.unlearned{background:#ddd}td.holds{background:#e3eefa}
td.undecided{background:repeating-linear-gradient(135deg,#fff,#fff 6px,#f0f0f0 6px,#f0f0f0 12px)}.unlearned-box{background:#fde0dd;border-left:4px solid #d55e00;padding:.6em 1em;font-weight:600}
.warnings{background:#fff8e1;border-left:4px solid #e69f00;padding:.4em 1em;margin:1em 0}.warnings ul{margin:.3em 0}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
code,pre{background:#f4f4f4;padding:.1em .3em}pre{padding:.6em;overflow-x:auto}.muted{color:#666}";

impl Page {
    /// A page with a title (plain text).
    pub fn new(title: &str) -> Self {
        Self { body: String::new(), title: title.to_string() }
    }

    /// Adds a section heading with an anchor id.
    pub fn heading(&mut self, id: &str, text: &str) {
        let _ = writeln!(self.body, "<h2 id=\"{}\">{}</h2>", escape(id), escape(text));
    }

    /// Adds a paragraph of plain text.
    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// Adds raw, already-safe HTML.
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
        self.body.push('\n');
    }

    /// Adds a figure: an image file beside the page, with alternative text and a caption.
    pub fn figure(&mut self, src: &str, alt: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            escape(src),
            escape(alt),
            escape(caption)
        );
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n{}</body>\n</html>\n",
            escape(&self.title),
            escape(&self.title),
            self.body
        )
    }
}

/// A table cell of plain text.
pub fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

/// A number for a table cell, right-aligned, with a sign when asked.
pub fn number(value: Option<f64>, decimals: usize, signed: bool) -> String {
    match value {
        Some(v) if v.is_finite() => number_cell(&number_text(v, decimals, signed)),
        _ => number_cell("–"),
    }
}

/// A number with `decimals`, with a sign when asked.
pub fn number_text(x: f64, decimals: usize, signed: bool) -> String {
    if signed { format!("{x:+.decimals$}") } else { format!("{x:.decimals$}") }
}

/// A number with its interval, e.g. `+0.62 [+0.55, +0.70]`.
pub fn with_interval(v: [f64; 3], decimals: usize, signed: bool) -> String {
    let f = |x: f64| number_text(x, decimals, signed);
    format!("{} [{}, {}]", f(v[0]), f(v[1]), f(v[2]))
}

/// A right-aligned table cell of text made of numbers.
pub fn number_cell(text: &str) -> String {
    format!("<td class=\"num\">{}</td>", escape(text))
}

/// A table cell holding a number with its interval.
pub fn interval_cell(v: Option<[f64; 3]>, decimals: usize, signed: bool) -> String {
    match v {
        Some(v) if v.iter().all(|x| x.is_finite()) => number_cell(&with_interval(v, decimals, signed)),
        _ => number_cell("–"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<script>alert('x') & \"y\"</script>"), "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
    }
}
