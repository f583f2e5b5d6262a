//! Finds the line of a field in a block-style YAML text, so that an error found after
//! parsing (a value out of range) can still name its line. Best effort: when a segment is
//! not found, the line of the deepest segment found is returned.

/// A field path and what is wrong with it.
pub type FieldError = (String, String);

/// `Err` of a field path and what is wrong with it.
pub fn err<T>(field: String, message: impl Into<String>) -> Result<T, FieldError> {
    Err((field, message.into()))
}

/// `path` like `arrival.stages[1].to_per_s`. Returns a 1-based line number.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found: Option<usize> = None;
    // Search window: lines after `start`, deeper than `parent_indent`.
    let mut start = 0usize;
    let mut parent_indent: Option<usize> = None;
    for segment in segments(path) {
        let hit = match segment {
            Segment::Key(key) => find_key(&lines, start, parent_indent, key),
            Segment::Index(n) => find_item(&lines, start, parent_indent, n),
        };
        match hit {
            Some((line, indent)) => {
                found = Some(line);
                start = line;
                parent_indent = Some(indent);
            }
            None => break,
        }
    }
    found.map(|i| i + 1)
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in rest.split('[') {
            if let Ok(n) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(n));
            }
        }
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The first line at or after `start` (exclusive of a parent line) holding `key:` deeper than
/// the parent, stopping when the parent's block ends. A key may follow `- ` on an item line.
fn find_key(
    lines: &[&str],
    start: usize,
    parent: Option<usize>,
    key: &str,
) -> Option<(usize, usize)> {
    let first = if parent.is_some() { start } else { 0 };
    for (i, line) in lines.iter().enumerate().skip(first) {
        if !is_content(line) {
            continue;
        }
        let indent = indent_of(line);
        if let Some(p) = parent {
            if i > start && indent <= p && !line.trim_start().starts_with("- ") {
                return None;
            }
        }
        let body = line.trim_start().trim_start_matches("- ");
        let key_indent = indent + (line.trim_start().len() - body.len());
        let matches_key = body.starts_with(key) && body[key.len()..].trim_start().starts_with(':');
        let deeper = parent.is_none_or(|p| key_indent > p || i == start);
        if matches_key && deeper && (parent.is_some() || indent == 0) {
            return Some((i, key_indent));
        }
        // Flow mappings on one line: `- { a: 1, key: 2 }`.
        if deeper && i >= start && body.starts_with('{') && body.contains(&format!("{key}:")) {
            return Some((i, key_indent));
        }
    }
    None
}

/// The line of the `n`-th `- ` item in the block under the parent.
fn find_item(
    lines: &[&str],
    start: usize,
    parent: Option<usize>,
    n: usize,
) -> Option<(usize, usize)> {
    let mut seen = 0;
    let mut item_indent = None;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if !is_content(line) {
            continue;
        }
        let indent = indent_of(line);
        if parent.is_some_and(|p| indent < p)
            || (parent.is_some_and(|p| indent == p) && !line.trim_start().starts_with("- "))
        {
            return None;
        }
        if line.trim_start().starts_with("- ") {
            let expected = *item_indent.get_or_insert(indent);
            if indent != expected {
                continue;
            }
            if seen == n {
                return Some((i, indent));
            }
            seen += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: x
# comment
arrival:
  stages:
    - duration_s: 5
      rate_per_s: 10
    - { duration_s: 5, from_per_s: 1, to_per_s: 0 }
users:
  count: 0
";

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(line_of(TEXT, "name"), Some(1));
        assert_eq!(line_of(TEXT, "arrival"), Some(3));
        assert_eq!(line_of(TEXT, "arrival.stages[0].rate_per_s"), Some(6));
        assert_eq!(line_of(TEXT, "arrival.stages[1].to_per_s"), Some(7));
        assert_eq!(line_of(TEXT, "users.count"), Some(9));
        assert_eq!(line_of(TEXT, "missing"), None);
    }
}
