//! Finds where a key is written in a manifest, so errors can name its line.
//!
//! A light scan of the TOML text (table headers, arrays of tables and `key = value` lines),
//! enough for manifests written one key per line as the shipped ones are.

/// One `key = value` assignment: its full path (`train.epochs`, `sources[1].dilate`) and position.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Dotted key path with array-of-table indices.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the key.
    pub column: usize,
    /// Byte offset of the start of the line.
    pub offset: usize,
}

/// Every assignment in `text`, in order.
pub fn assignments(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut array_counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut offset = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let line_offset = offset;
        offset += raw.len();
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let name = name.trim().to_string();
            let index = array_counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{index}]");
            *index += 1;
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.trim().to_string();
            continue;
        }
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim().trim_matches('"');
            let path = if table.is_empty() { key.to_string() } else { format!("{table}.{key}") };
            let column = raw.len() - raw.trim_start().len() + 1;
            out.push(Assignment { path, line: n + 1, column, offset: line_offset });
        }
    }
    out
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The assignment whose line contains byte `offset`, if any.
pub fn assignment_at(text: &str, offset: usize) -> Option<Assignment> {
    assignments(text).into_iter().rev().find(|a| a.offset <= offset && line_end(text, a.offset) >= offset)
}

fn line_end(text: &str, start: usize) -> usize {
    text[start..].find('\n').map_or(text.len(), |i| start + i)
}

/// The line where `path` is assigned, if it is written in the file.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    assignments(text).into_iter().find(|a| a.path == path).map(|a| a.line)
}

/// 1-based (line, column) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_and_array_keys() {
        let text = "name = \"x\" # a comment\n[train]\nepochs = 3\n\n[[sources]]\nkind = \"manual\"\n[[sources]]\n  dilate = 2\n";
        let paths: Vec<(String, usize)> = assignments(text).into_iter().map(|a| (a.path, a.line)).collect();
        assert_eq!(
            paths,
            vec![("name".into(), 1), ("train.epochs".into(), 3), ("sources[0].kind".into(), 6), ("sources[1].dilate".into(), 8)]
        );
        assert_eq!(line_of(text, "sources[1].dilate"), Some(8));
        let at = text.find("dilate").unwrap() + 3;
        assert_eq!(assignment_at(text, at).unwrap().path, "sources[1].dilate");
        assert_eq!(line_column(text, at), (8, 6));
    }
}
