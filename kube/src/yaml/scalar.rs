//! Plain scalars resolved as YAML 1.1 does (go-yaml v2, behind kubectl and the API server):
//! `yes`/`on` booleans, `~` nulls, octal and hex integers, floats; quoted, block and `!!str`
//! scalars stay strings.

use serde_json::{Number, Value};
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

/// Resolves a scalar as YAML 1.1 (go-yaml v2, which kubectl and the API server use) does.
pub(super) fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag {
        if tag.suffix == "str" {
            return Value::String(text.to_string());
        }
    }
    if style != TScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n.into());
    }
    let looks_float = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_float {
        if let Some(n) = text
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

/// A YAML 1.1 integer: decimal, `0x` hex, `0o` or leading-zero octal, `_` separators.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.replace('_', "");
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plain(text: &str) -> Value {
        resolve(text, TScalarStyle::Plain, None)
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        for (text, want) in [
            ("on", json!(true)),
            ("No", json!(false)),
            ("~", Value::Null),
            ("", Value::Null),
            ("0755", json!(493)),
            ("0o17", json!(15)),
            ("-0x10", json!(-16)),
            ("1_000", json!(1000)),
            ("+7", json!(7)),
            ("2.5e1", json!(25.0)),
            ("1.2.3", json!("1.2.3")),
            ("08", json!(8.0)),
            ("e", json!("e")),
            ("hello", json!("hello")),
        ] {
            assert_eq!(plain(text), want, "{text:?}");
        }
    }

    #[test]
    fn quoted_and_tagged_scalars_stay_strings() {
        assert_eq!(
            resolve("yes", TScalarStyle::SingleQuoted, None),
            json!("yes")
        );
        assert_eq!(resolve("12", TScalarStyle::Literal, None), json!("12"));
        let tag = Tag {
            handle: "!!".into(),
            suffix: "str".into(),
        };
        assert_eq!(resolve("12", TScalarStyle::Plain, Some(&tag)), json!("12"));
    }

    #[test]
    fn integers_by_base() {
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("-12"), Some(-12));
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_int("1a"), None);
    }
}
