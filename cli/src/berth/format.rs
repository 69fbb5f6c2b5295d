//! `--format` templates: the part of Go's text/template that people type at Docker's
//! `inspect`, `ps` and friends, evaluated over JSON values. Actions: `{{.Field.Sub}}`, `{{.}}`,
//! `{{$}}`, `{{$var}}`, functions `json`, `index`, `join`, `lower`, `upper`, `title`, `len`,
//! `println`, pipes (`{{.Name | json}}`), `{{range}}` (with `$k, $v :=`), `{{if}}`/`{{else}}`,
//! `{{end}}` and the `{{-`/`-}}` trim markers. Values print as Go prints them (`map[k:v]`,
//! `[a b]`, `<nil>`); a field the value does not have is an error naming it, like Go's.
//! Durations and sizes are worded by [`human`], as Docker words them.

mod human;

use std::fmt::Write as _;

use serde_json::Value;

pub use human::{human_duration, human_size, human_size_with_precision};

/// A template that failed to parse or to execute, in Go's wording.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("template parsing error: template: :{line}: {msg}")]
    Parse {
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Evaluating an action failed.
    #[error("template: :{line}:{col}: executing \"\" at <{action}>: {msg}")]
    Exec {
        /// 1-based line of the action.
        line: usize,
        /// 1-based column of the action's text.
        col: usize,
        /// The action's text.
        action: String,
        /// What went wrong.
        msg: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Action),
    Range {
        vars: Vec<String>,
        over: Action,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    If {
        cond: Action,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// One `{{...}}` pipeline with where it was written, for errors.
#[derive(Debug, Clone)]
struct Action {
    text: String,
    line: usize,
    col: usize,
    commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.`), from the dot.
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone: the root).
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
}

/// One raw `{{...}}` with its position.
struct Tag {
    body: String,
    line: usize,
    col: usize,
}

enum Piece {
    Text(String),
    Tag(Tag),
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let pieces = split(text)?;
        let mut iter = pieces.into_iter().peekable();
        let (nodes, end) = parse_nodes(&mut iter)?;
        if let Some((word, line)) = end {
            return Err(TemplateError::Parse {
                line,
                msg: format!("unexpected {{{{{word}}}}}"),
            });
        }
        Ok(Template { nodes })
    }

    /// Evaluates the template with `value` as the dot.
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut scope = vec![("$".to_string(), value.clone())];
        exec(&self.nodes, value, &mut scope, &mut out)?;
        Ok(out)
    }
}

/// Splits text into literal text and tags, applying the trim markers.
fn split(text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    let position = |at: usize| {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, col)
    };
    while let Some(open) = rest.find("{{") {
        let mut literal = rest[..open].to_string();
        let mut inner_start = open + 2;
        if rest[inner_start..].starts_with("- ") || rest[inner_start..].starts_with("-\t") {
            literal = literal.trim_end().to_string();
            inner_start += 1;
        }
        let Some(close) = rest[inner_start..].find("}}") else {
            return Err(TemplateError::Parse {
                line: position(offset + open).0,
                msg: "unclosed action".into(),
            });
        };
        let mut inner = &rest[inner_start..inner_start + close];
        let mut after = inner_start + close + 2;
        let trim_right = inner.ends_with(" -") || inner.ends_with("\t-");
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        let (line, col) = position(offset + inner_start);
        pieces.push(Piece::Tag(Tag {
            body: inner.trim().to_string(),
            line,
            col,
        }));
        if trim_right {
            let skipped = rest[after..].len() - rest[after..].trim_start().len();
            after += skipped;
        }
        offset += after;
        rest = &rest[after..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// Parsed nodes and the `{{end}}`/`{{else}}` that closed them (with its line), if any.
type Parsed = (Vec<Node>, Option<(String, usize)>);

/// Parses nodes until `{{end}}` or `{{else}}` (returned with its line) or the end.
fn parse_nodes(iter: &mut Pieces) -> Result<Parsed, TemplateError> {
    let mut nodes = Vec::new();
    while let Some(piece) = iter.next() {
        let tag = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Piece::Tag(tag) => tag,
        };
        let first = tag.body.split_whitespace().next().unwrap_or("");
        match first {
            "end" | "else" => return Ok((nodes, Some((tag.body.clone(), tag.line)))),
            "range" | "if" => {
                let rest = tag.body[first.len()..].trim();
                let (vars, expr) = match rest.split_once(":=") {
                    Some((vars, expr)) if first == "range" => (
                        vars.split(',').map(|v| v.trim().to_string()).collect(),
                        expr.trim(),
                    ),
                    _ => (Vec::new(), rest),
                };
                if vars
                    .iter()
                    .any(|v: &String| !v.starts_with('$') || v.len() < 2)
                    || vars.len() > 2
                {
                    return Err(TemplateError::Parse {
                        line: tag.line,
                        msg: format!("bad variable declaration in {:?}", tag.body),
                    });
                }
                let action = parse_action(expr, &tag)?;
                let (body, end) = parse_nodes(iter)?;
                let otherwise = match end {
                    Some((word, _)) if word == "else" => match parse_nodes(iter)? {
                        (nodes, Some((word, _))) if word == "end" => nodes,
                        (_, _) => return Err(unclosed(first, &tag)),
                    },
                    Some((word, _)) if word == "end" => Vec::new(),
                    _ => return Err(unclosed(first, &tag)),
                };
                nodes.push(if first == "range" {
                    Node::Range {
                        vars,
                        over: action,
                        body,
                        otherwise,
                    }
                } else {
                    Node::If {
                        cond: action,
                        then: body,
                        otherwise,
                    }
                });
            }
            _ => nodes.push(Node::Action(parse_action(&tag.body, &tag)?)),
        }
    }
    Ok((nodes, None))
}

fn unclosed(word: &str, tag: &Tag) -> TemplateError {
    TemplateError::Parse {
        line: tag.line,
        msg: format!("unexpected EOF: {{{{{word}}}}} without {{{{end}}}}"),
    }
}

fn parse_action(expr: &str, tag: &Tag) -> Result<Action, TemplateError> {
    let bad = |msg: String| TemplateError::Parse {
        line: tag.line,
        msg,
    };
    let mut commands = vec![Vec::new()];
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            commands.push(Vec::new());
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(bad(format!("unterminated quoted string in {expr:?}"))),
                    Some('"') => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&other) => s.push(other),
                            None => return Err(bad("unterminated quoted string".into())),
                        }
                    }
                    Some(&other) => s.push(other),
                }
                i += 1;
            }
            i += 1;
            if let Some(c) = commands.last_mut() {
                c.push(Arg::Str(s));
            }
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let arg = if let Some(path) = word.strip_prefix('.') {
                Arg::Field(field_path(path))
            } else if let Some(var) = word.strip_prefix('$') {
                let (name, path) = var.split_once('.').unwrap_or((var, ""));
                Arg::Var(format!("${name}"), field_path(path))
            } else if let Ok(n) = word.parse::<f64>() {
                Arg::Num(n)
            } else if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Arg::Ident(word)
            } else {
                return Err(bad(format!("unexpected {word:?} in command")));
            };
            if let Some(c) = commands.last_mut() {
                c.push(arg);
            }
        }
    }
    if commands.iter().any(Vec::is_empty) {
        return Err(bad(format!("missing value for command in {{{{{expr}}}}}")));
    }
    Ok(Action {
        text: expr.to_string(),
        line: tag.line,
        col: tag.col,
        commands,
    })
}

fn field_path(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn exec(
    nodes: &[Node],
    dot: &Value,
    scope: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(a) => {
                let v = eval(a, dot, scope)?;
                out.push_str(&go_string(&v));
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let v = eval(cond, dot, scope)?;
                exec(if truthy(&v) { then } else { otherwise }, dot, scope, out)?;
            }
            Node::Range {
                vars,
                over,
                body,
                otherwise,
            } => {
                let v = eval(over, dot, scope)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => {
                        let mut kv: Vec<_> = m.iter().collect();
                        kv.sort_by(|a, b| a.0.cmp(b.0));
                        kv.into_iter()
                            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                            .collect()
                    }
                    Value::Null => Vec::new(),
                    other => {
                        return Err(exec_err(
                            over,
                            format!("range can't iterate over {}", go_string(other)),
                        ))
                    }
                };
                if items.is_empty() {
                    exec(otherwise, dot, scope, out)?;
                }
                for (k, x) in items {
                    let depth = scope.len();
                    match vars.as_slice() {
                        [v] => scope.push((v.clone(), x.clone())),
                        [kname, vname] => {
                            scope.push((kname.clone(), k));
                            scope.push((vname.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    let result = exec(body, &x, scope, out);
                    scope.truncate(depth);
                    result?;
                }
            }
        }
    }
    Ok(())
}

fn exec_err(a: &Action, msg: String) -> TemplateError {
    TemplateError::Exec {
        line: a.line,
        col: a.col,
        action: a.text.clone(),
        msg,
    }
}

fn eval(a: &Action, dot: &Value, scope: &[(String, Value)]) -> Result<Value, TemplateError> {
    let mut piped: Option<Value> = None;
    for command in &a.commands {
        let mut args = command.clone();
        let head = args.remove(0);
        let mut values = Vec::new();
        for arg in &args {
            values.push(value_of(arg, a, dot, scope)?);
        }
        if let Some(p) = piped.take() {
            values.push(p);
        }
        piped = Some(match head {
            Arg::Ident(name) => call(&name, values).map_err(|msg| exec_err(a, msg))?,
            other if values.is_empty() => value_of(&other, a, dot, scope)?,
            _ => return Err(exec_err(a, "can't give argument to non-function".into())),
        });
    }
    Ok(piped.unwrap_or(Value::Null))
}

fn value_of(
    arg: &Arg,
    a: &Action,
    dot: &Value,
    scope: &[(String, Value)],
) -> Result<Value, TemplateError> {
    match arg {
        Arg::Field(path) => walk(dot, path).map_err(|msg| exec_err(a, msg)),
        Arg::Var(name, path) => {
            let base = scope
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| exec_err(a, format!("undefined variable: {name}")))?;
            walk(base, path).map_err(|msg| exec_err(a, msg))
        }
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Num(n) => Ok(serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)),
        Arg::Ident(name) => call(name, Vec::new()).map_err(|msg| exec_err(a, msg)),
    }
}

fn walk(v: &Value, path: &[String]) -> Result<Value, String> {
    let mut cur = v;
    for key in path {
        cur = match cur {
            Value::Object(m) => m
                .get(key)
                .ok_or_else(|| format!("map has no entry for key {key:?}"))?,
            Value::Null => return Err(format!("nil pointer evaluating interface {{}}.{key}")),
            other => {
                return Err(format!(
                    "can't evaluate field {key} in type {}",
                    go_type(other)
                ))
            }
        };
    }
    Ok(cur.clone())
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let one = |args: &[Value]| -> Result<Value, String> {
        match args {
            [v] => Ok(v.clone()),
            _ => Err(format!(
                "wrong number of args for {name}: want 1 got {}",
                args.len()
            )),
        }
    };
    match name {
        "json" => Ok(Value::String(
            serde_json::to_string(&one(&args)?).map_err(|e| e.to_string())?,
        )),
        "lower" => Ok(Value::String(go_string(&one(&args)?).to_lowercase())),
        "upper" => Ok(Value::String(go_string(&one(&args)?).to_uppercase())),
        "title" => Ok(Value::String(
            go_string(&one(&args)?)
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "len" => match one(&args)? {
            Value::Array(a) => Ok(Value::from(a.len())),
            Value::Object(m) => Ok(Value::from(m.len())),
            Value::String(s) => Ok(Value::from(s.len())),
            other => Err(format!("len of type {}", go_type(&other))),
        },
        "join" => match args.as_slice() {
            [Value::Array(items), sep] => Ok(Value::String(
                items
                    .iter()
                    .map(go_string)
                    .collect::<Vec<_>>()
                    .join(&go_string(sep)),
            )),
            _ => Err("join needs a list and a separator".into()),
        },
        "println" => Ok(Value::String(
            args.iter().map(go_string).collect::<Vec<_>>().join(" ") + "\n",
        )),
        "index" => {
            let mut it = args.into_iter();
            let mut cur = it.next().ok_or("index of nothing")?;
            for key in it {
                cur = match (&cur, &key) {
                    (Value::Object(m), k) => m.get(&go_string(k)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index must be a non-negative integer")?;
                        a.get(i as usize)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Null, _) => Value::Null,
                    (other, _) => {
                        return Err(format!("can't index item of type {}", go_type(other)))
                    }
                };
            }
            Ok(cur)
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A value as Go's `fmt.Print` shows it.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let mut s = String::from("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let _ = write!(s, "{k}:{}", go_string(&m[k]));
            }
            s.push(']');
            s
        }
    }
}

/// Rows as aligned text lines: every column but the last padded to its widest cell plus
/// three spaces (Docker's tabwriter settings), trailing spaces trimmed.
pub fn align_columns(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count() + 3;
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> Result<String, TemplateError> {
        Template::parse(t)?.render(v)
    }

    fn doc() -> Value {
        json!({
            "Name": "/web",
            "State": {"Status": "running", "Pid": 42, "Running": true},
            "Config": {"Labels": {"app": "hello", "tier": "web"}, "Env": ["A=1", "B=2"], "Cmd": null},
            "NetworkSettings": {"IPAddress": "10.88.0.2",
                "Ports": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8100"}], "53/udp": null}},
        })
    }

    #[test]
    fn fields_functions_and_pipes() {
        let d = doc();
        assert_eq!(render("{{.State.Status}}", &d).unwrap(), "running");
        assert_eq!(
            render("{{.NetworkSettings.IPAddress}}", &d).unwrap(),
            "10.88.0.2"
        );
        assert_eq!(render("{{.Name}} {{.State.Pid}}", &d).unwrap(), "/web 42");
        assert_eq!(
            render(r#"{{index .Config.Labels "app"}}"#, &d).unwrap(),
            "hello"
        );
        assert_eq!(
            render(r#"{{index .Config.Labels "none"}}"#, &d).unwrap(),
            "<nil>"
        );
        assert_eq!(
            render("{{json .Config.Env}}", &d).unwrap(),
            r#"["A=1","B=2"]"#
        );
        assert_eq!(
            render("{{.Config.Env | json}}", &d).unwrap(),
            r#"["A=1","B=2"]"#
        );
        assert_eq!(
            render(r#"{{join .Config.Env ","}}"#, &d).unwrap(),
            "A=1,B=2"
        );
        assert_eq!(
            render("{{.Config.Labels}}", &d).unwrap(),
            "map[app:hello tier:web]"
        );
        assert_eq!(render("{{.Config.Env}}", &d).unwrap(), "[A=1 B=2]");
        assert_eq!(render("{{upper .State.Status}}", &d).unwrap(), "RUNNING");
        assert!(
            render(
                r#"{{(index (index .NetworkSettings.Ports "8000/tcp") 0).HostPort}}"#,
                &d
            )
            .is_err(),
            "parentheses are not part of the subset"
        );
    }

    #[test]
    fn range_if_and_variables() {
        let d = doc();
        assert_eq!(
            render("{{range .Config.Env}}[{{.}}]{{end}}", &d).unwrap(),
            "[A=1][B=2]"
        );
        assert_eq!(
            render(
                "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{if $b}}{{range $b}}{{.HostPort}}{{end}}{{else}}-{{end}};{{end}}",
                &d
            )
            .unwrap(),
            "53/udp=-;8000/tcp=8100;"
        );
        assert_eq!(
            render("{{range .Config.Env -}}\n  {{.}}\n{{- end}}", &d).unwrap(),
            "A=1B=2"
        );
        assert_eq!(render("{{$.Name}}", &d).unwrap(), "/web");
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", &d).unwrap(),
            "up"
        );
    }

    #[test]
    fn errors_name_the_field_and_place() {
        let e = render("x {{.State.Nope}}", &doc()).unwrap_err().to_string();
        assert_eq!(
            e,
            "template: :1:5: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
        );
        let e = render("{{.Name.Sub}}", &doc()).unwrap_err().to_string();
        assert!(e.contains("can't evaluate field Sub in type string"), "{e}");
        assert!(Template::parse("{{range .Config.Env}}").is_err());
        assert!(Template::parse("{{.Name").is_err());
        assert!(render("{{nosuch .Name}}", &doc())
            .unwrap_err()
            .to_string()
            .contains("not defined"));
    }
}
