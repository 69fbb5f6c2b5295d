//! Output of the Kubernetes-style commands: kubectl's column layout for `Table` answers, and
//! objects as YAML (block style, keys in the order the server sent them) or JSON.

use serde_json::Value;

/// Prints a `Table` answer as kubectl does: upper-case headers, columns padded to their
/// widest cell plus three spaces; `wide` adds the priority-1 columns, `namespace` a first
/// NAMESPACE column, `prefix` a `kind/` before each name.
pub fn print_table(
    table: &Value,
    wide: bool,
    namespace: bool,
    prefix: Option<&str>,
    headers: bool,
) {
    let defs = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<usize> = defs
        .iter()
        .enumerate()
        .filter(|(_, d)| wide || d["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    if headers {
        let mut h: Vec<String> = shown
            .iter()
            .map(|&i| {
                defs[i]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            })
            .collect();
        if namespace {
            h.insert(0, "NAMESPACE".into());
        }
        rows.push(h);
    }
    for row in table["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let mut r: Vec<String> = shown
            .iter()
            .map(|&i| cell(cells.get(i).unwrap_or(&Value::Null)))
            .collect();
        if let (Some(p), Some(first)) = (prefix, r.first_mut()) {
            *first = format!("{p}/{first}");
        }
        if namespace {
            r.insert(
                0,
                row["object"]["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        rows.push(r);
    }
    print!("{}", layout(&rows));
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// Rows in aligned columns (three spaces between, none after the last).
fn layout(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, s) in r.iter().enumerate() {
            line.push_str(s);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - s.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `value` as a YAML document (block style, keys sorted, like `kubectl get -o yaml`).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (k, v) in sorted(m) {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(k));
        out.push(':');
        write_value(out, v, indent, false);
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                // The first key goes on the dash's line, the rest under it.
                let mut first = true;
                for (k, val) in sorted(m) {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        out.push_str(&" ".repeat(indent + 2));
                    }
                    out.push_str(&key(k));
                    out.push(':');
                    write_value(out, val, indent + 2, false);
                }
            }
            other => write_value(out, other, indent, true),
        }
    }
}

/// Writes what follows `key:` (or `-`): a nested block on the next lines, or ` scalar`.
fn write_value(out: &mut String, v: &Value, indent: usize, in_seq: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            // kubectl puts list items of a map key at the key's own indentation.
            write_seq(out, a, if in_seq { indent + 2 } else { indent });
        }
        Value::String(s) if s.contains('\n') => {
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            out.push_str(&format!(" |{chomp}\n"));
            for line in s.trim_end_matches('\n').split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        quote(k)
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => quote(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// Whether `s` reads back as the same string without quotes.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || looks_like_date(s)
    {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "?:,[]{}#&*!|>'\"%@`".contains(first) || s == "-" || s.starts_with("- ") {
        return false;
    }
    !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.contains('\n')
        && !s.contains('\t')
}

/// `2024-01-02...`: YAML would read it as a timestamp.
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_like_kubectl() {
        let v = json!({"apiVersion": "v1", "data": {"a": "1", "b": "x: y", "c": "line1\nline2\n"},
                       "spec": {"containers": [{"name": "c", "args": ["-v", "true"]}], "empty": {}},
                       "num": 3, "metadata": {"creationTimestamp": "2026-11-25T17:47:46Z", "ip": "10.88.0.2"}});
        assert_eq!(
            to_yaml(&v),
            "apiVersion: v1\ndata:\n  a: \"1\"\n  b: \"x: y\"\n  c: |\n    line1\n    line2\nmetadata:\n  creationTimestamp: \"2026-11-25T17:47:46Z\"\n  ip: 10.88.0.2\nnum: 3\nspec:\n  containers:\n  - args:\n    - -v\n    - \"true\"\n    name: c\n  empty: {}\n"
        );
    }

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["NAME".to_string(), "DATA".to_string()],
            vec!["hello-world".to_string(), "1".to_string()],
        ];
        assert_eq!(layout(&rows), "NAME          DATA\nhello-world   1\n");
    }
}
