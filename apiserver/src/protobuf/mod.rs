//! The protobuf bodies kubectl sends: its generators (`create namespace|configmap|secret|
//! deployment|service NAME`) encode with Kubernetes' protobuf envelope (`k8s\0` +
//! `runtime.Unknown`) and get no JSON fallback. Bodies of the kinds in [`schema`] are turned
//! into the JSON the API takes, field by field as the schema names them; a field the schema
//! does not know is refused unless it holds only zero values (the Go encoder writes every
//! non-pointer field, set or not), so nothing a client sent is dropped unseen.

mod schema;

use base64::Engine;
use serde_json::{json, Map, Value};

use schema::{Field, Ty};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body was not decoded; messages name the field path where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    #[error("not a Kubernetes protobuf envelope")]
    NotEnvelope,
    /// The envelope holds no `raw` object.
    #[error("protobuf envelope without an object")]
    NoObject,
    /// The envelope's type is not one [`schema::KINDS`] knows.
    #[error("protobuf bodies are decoded for {known} only, not {api_version} {kind}")]
    UnsupportedKind {
        /// The kinds decoded, as `v1 Secret, apps/v1 Deployment, ...`.
        known: String,
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// A fixed 64-bit field runs past the end.
    #[error("truncated 64-bit field")]
    Truncated64,
    /// A fixed 32-bit field runs past the end.
    #[error("truncated 32-bit field")]
    Truncated32,
    /// A length-delimited field is longer than what is left.
    #[error("truncated length-delimited field")]
    TruncatedBytes,
    /// A length does not fit in memory.
    #[error("length overflow")]
    LengthOverflow,
    /// A group (3, 4) or unknown wire type.
    #[error("unsupported wire type {0}")]
    WireType(u64),
    /// A varint runs past the end.
    #[error("truncated varint")]
    TruncatedVarint,
    /// A varint of more than ten bytes.
    #[error("varint too long")]
    VarintTooLong,
    /// A message's bytes do not parse (the error inside) at `path`.
    #[error("{path}: {error}")]
    At {
        /// The message's field path.
        path: String,
        /// What is wrong with its bytes.
        error: Box<DecodeError>,
    },
    /// A number where a string, bytes or message belongs.
    #[error("{0}: expected a length-delimited value")]
    ExpectedBytes(String),
    /// A string field that is not UTF-8.
    #[error("{0}: not UTF-8")]
    NotUtf8(String),
    /// Bytes where a number belongs.
    #[error("{0}: expected a number")]
    ExpectedNumber(String),
    /// A map or inlined message where one value belongs (a schema mistake).
    #[error("{0}: not a single value")]
    NotSingleValue(String),
    /// A field the schema does not name, holding something.
    #[error("{path}: field {number} is set, and berth does not decode it")]
    UnknownField {
        /// The message's field path.
        path: String,
        /// The field number.
        number: u64,
    },
}

/// One field on the wire: a varint or a length-delimited value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of one message, in order (fixed 32- and 64-bit values, which no Kubernetes
/// type uses, are skipped; group wire types end decoding with an error).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((number, Wire::Varint(varint(&mut buf)?))),
            1 => buf = buf.get(8..).ok_or(DecodeError::Truncated64)?,
            2 => {
                let len =
                    usize::try_from(varint(&mut buf)?).map_err(|_| DecodeError::LengthOverflow)?;
                let data = buf.get(..len).ok_or(DecodeError::TruncatedBytes)?;
                out.push((number, Wire::Bytes(data)));
                buf = &buf[len..];
            }
            5 => buf = buf.get(4..).ok_or(DecodeError::Truncated32)?,
            other => return Err(DecodeError::WireType(other)),
        }
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(DecodeError::TruncatedVarint)?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Whether a field berth does not decode holds nothing: zero, an empty string, or a
/// message of such values.
fn is_zero(w: &Wire<'_>) -> bool {
    match w {
        Wire::Varint(v) => *v == 0,
        Wire::Bytes(b) => {
            b.is_empty() || fields(b).is_ok_and(|fs| fs.iter().all(|(_, w)| is_zero(w)))
        }
    }
}

fn bytes<'a>(w: &Wire<'a>, path: &str) -> Result<&'a [u8], DecodeError> {
    match w {
        Wire::Bytes(b) => Ok(b),
        Wire::Varint(_) => Err(DecodeError::ExpectedBytes(path.to_string())),
    }
}

fn text(w: &Wire<'_>, path: &str) -> Result<String, DecodeError> {
    String::from_utf8(bytes(w, path)?.to_vec()).map_err(|_| DecodeError::NotUtf8(path.to_string()))
}

fn number(w: &Wire<'_>, path: &str) -> Result<i64, DecodeError> {
    match w {
        // int32 and int64 alike: negative values are sign-extended to ten bytes.
        Wire::Varint(v) => Ok(*v as i64),
        Wire::Bytes(_) => Err(DecodeError::ExpectedNumber(path.to_string())),
    }
}

/// `map<string, V>` entry: key (1) and value (2).
fn map_entry<'a>(w: &Wire<'a>, path: &str) -> Result<(String, Option<Wire<'a>>), DecodeError> {
    let (mut key, mut value) = (String::new(), None);
    for (n, f) in fields(bytes(w, path)?)? {
        match n {
            1 => key = text(&f, path)?,
            2 => value = Some(f),
            _ => {}
        }
    }
    Ok((key, value))
}

/// `IntOrString`: type (1: 0 int, 1 string), intVal (2), strVal (3).
fn int_or_string(w: &Wire<'_>, path: &str) -> Result<Value, DecodeError> {
    let (mut is_string, mut int, mut string) = (false, 0, String::new());
    for (n, f) in fields(bytes(w, path)?)? {
        match n {
            1 => is_string = number(&f, path)? == 1,
            2 => int = number(&f, path)?,
            3 => string = text(&f, path)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(string) } else { json!(int) })
}

/// `resource.Quantity`: its string form (field 1).
fn quantity(w: &Wire<'_>, path: &str) -> Result<Value, DecodeError> {
    let mut s = String::new();
    for (n, f) in fields(bytes(w, path)?)? {
        if n == 1 {
            s = text(&f, path)?;
        }
    }
    Ok(json!(s))
}

/// One value of type `ty`; `None` when it decodes to nothing (0, false, "", a message with
/// no field left) and `keep_zero` is false.
fn value(ty: Ty, w: &Wire<'_>, keep_zero: bool, path: &str) -> Result<Option<Value>, DecodeError> {
    let v = match ty {
        Ty::Str => json!(text(w, path)?),
        Ty::Int => json!(number(w, path)?),
        Ty::Bool => json!(number(w, path)? != 0),
        Ty::IntOrStr => int_or_string(w, path)?,
        Ty::Quantity => quantity(w, path)?,
        Ty::Msg(schema) => Value::Object(message(bytes(w, path)?, schema, path)?),
        Ty::Ignored => return Ok(None),
        Ty::Inline(_) | Ty::MapStr | Ty::MapBytes | Ty::MapQuantity => {
            return Err(DecodeError::NotSingleValue(path.to_string()))
        }
    };
    let zero = match &v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    Ok((keep_zero || !zero).then_some(v))
}

/// Decodes one message of `schema` into a JSON object; `path` names it in errors.
fn message(
    data: &[u8],
    schema: &'static [Field],
    path: &str,
) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    for (n, w) in fields(data).map_err(|e| DecodeError::At {
        path: path.to_string(),
        error: Box::new(e),
    })? {
        let Some(field) = schema.iter().find(|f| u64::from(f.number) == n) else {
            if is_zero(&w) {
                continue;
            }
            return Err(DecodeError::UnknownField {
                path: path.to_string(),
                number: n,
            });
        };
        let here = if path.is_empty() {
            field.name.to_string()
        } else {
            format!("{path}.{}", field.name)
        };
        let map_value = |ty: Ty, v: &Wire<'_>| -> Result<Value, DecodeError> {
            Ok(match ty {
                Ty::MapBytes => {
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes(v, &here)?))
                }
                Ty::MapQuantity => quantity(v, &here)?,
                _ => json!(text(v, &here)?),
            })
        };
        match field.ty {
            ty @ (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity) => {
                let (key, v) = map_entry(&w, &here)?;
                let v = match v {
                    Some(v) => map_value(ty, &v)?,
                    None if matches!(ty, Ty::MapQuantity) => json!("0"),
                    None => json!(""),
                };
                let entry = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = entry.as_object_mut() {
                    map.insert(key, v);
                }
            }
            Ty::Inline(schema) => {
                out.extend(message(bytes(&w, &here)?, schema, path)?);
            }
            ty if field.list => {
                let item = value(ty, &w, true, &here)?.unwrap_or(Value::Null);
                let entry = out.entry(field.name).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(item);
                }
            }
            ty => {
                if let Some(v) = value(ty, &w, field.keep_zero, &here)? {
                    out.insert(field.name.into(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Decodes a protobuf-enveloped object of a kind in [`schema::KINDS`] into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let rest = body.strip_prefix(MAGIC).ok_or(DecodeError::NotEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, f) in fields(rest)? {
        match n {
            1 => {
                for (m, g) in fields(bytes(&f, "typeMeta")?)? {
                    match m {
                        1 => api_version = text(&g, "apiVersion")?,
                        2 => kind = text(&g, "kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = Some(bytes(&f, "raw")?),
            _ => {}
        }
    }
    let raw = raw.ok_or(DecodeError::NoObject)?;
    let Some((_, _, schema)) = schema::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    else {
        let known: Vec<String> = schema::KINDS
            .iter()
            .map(|(v, k, _)| format!("{v} {k}"))
            .collect();
        return Err(DecodeError::UnsupportedKind {
            known: known.join(", "),
            api_version,
            kind,
        });
    };
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    obj.extend(message(raw, schema, "")?);
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    /// A length-delimited field.
    fn ld(field: u64, data: &[u8]) -> Vec<u8> {
        let mut v = varint_bytes(field << 3 | 2);
        v.extend(varint_bytes(data.len() as u64));
        v.extend_from_slice(data);
        v
    }

    /// A varint field.
    fn int(field: u64, value: u64) -> Vec<u8> {
        [varint_bytes(field << 3), varint_bytes(value)].concat()
    }

    fn envelope(api_version: &[u8], kind: &[u8], object: &[u8]) -> Vec<u8> {
        let type_meta = [ld(1, api_version), ld(2, kind)].concat();
        [MAGIC.to_vec(), ld(1, &type_meta), ld(2, object)].concat()
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let meta = [
            ld(1, b"creds"),
            ld(3, b"default"),
            ld(11, &[ld(1, b"app"), ld(2, b"web")].concat()),
        ]
        .concat();
        let secret = [
            ld(1, &meta),
            ld(2, &[ld(1, b"user"), ld(2, b"admin")].concat()),
            ld(3, b"Opaque"),
        ]
        .concat();
        let v = decode(&envelope(b"v1", b"Secret", &secret)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "creds", "namespace": "default", "labels": {"app": "web"}},
                   "type": "Opaque", "data": {"user": "YWRtaW4="}})
        );
        let e = decode(&envelope(b"batch/v1", b"Job", &[])).unwrap_err();
        assert!(e.to_string().contains("not batch/v1 Job"), "{e}");
        assert!(decode(b"{}").is_err());
    }

    /// A Deployment as Go's encoder writes it: unset strings as empty fields, unset structs
    /// as empty messages, `replicas` (a pointer) even when zero.
    #[test]
    fn decodes_a_deployment_with_go_zero_values() {
        let app_web = [ld(1, b"app"), ld(2, b"web")].concat();
        let labels = ld(11, &app_web);
        let meta = [ld(1, b"web"), ld(2, b""), labels.clone(), ld(8, &[])].concat();
        let probe = [
            ld(
                1,
                &ld(
                    2,
                    &[ld(1, b"/"), ld(2, &[int(1, 0), int(2, 80)].concat())].concat(),
                ),
            ),
            int(4, 3),
        ]
        .concat();
        let container = [
            ld(1, b"nginx"),
            ld(2, b"nginx:1"),
            ld(3, b"sleep"),
            ld(3, b"9"),
            ld(
                6,
                &[ld(1, b""), int(2, 0), int(3, 80), ld(4, b"TCP")].concat(),
            ),
            ld(8, &[]),
            ld(11, &probe),
            ld(13, b""),
            int(16, 0),
        ]
        .concat();
        let volume = [ld(1, b"scratch"), ld(2, &ld(2, &[]))].concat();
        let pod_spec = [ld(1, &volume), ld(2, &container), ld(3, b""), ld(6, b"")].concat();
        let template = [ld(1, &labels), ld(2, &pod_spec)].concat();
        let spec = [
            int(1, 0),
            ld(2, &ld(1, &app_web)),
            ld(3, &template),
            ld(4, &ld(1, b"")),
            int(5, 0),
        ]
        .concat();
        let deployment = [ld(1, &meta), ld(2, &spec), ld(3, &int(1, 0))].concat();
        let v = decode(&envelope(b"apps/v1", b"Deployment", &deployment)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "volumes": [{"name": "scratch", "emptyDir": {}}],
                        "containers": [{
                            "name": "nginx", "image": "nginx:1", "command": ["sleep", "9"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 3},
                        }],
                    },
                },
            }})
        );
    }

    #[test]
    fn a_set_field_berth_does_not_know_is_refused_by_path() {
        // PodSpec field 18 (affinity) with something in it.
        let pod_spec = [ld(2, &ld(1, b"c")), ld(18, &ld(1, &ld(1, b"x")))].concat();
        let pod = [ld(1, &ld(1, b"p")), ld(2, &pod_spec)].concat();
        let e = decode(&envelope(b"v1", b"Pod", &pod)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec: field 18 is set, and berth does not decode it"
        );
        // The same field holding only zero values is what Go writes for an unset struct.
        let pod_spec = [ld(2, &ld(1, b"c")), ld(18, &ld(1, b""))].concat();
        let pod = [ld(1, &ld(1, b"p")), ld(2, &pod_spec)].concat();
        assert!(decode(&envelope(b"v1", b"Pod", &pod)).is_ok());
    }

    #[test]
    fn broken_wire_data_is_refused_with_what_is_wrong() {
        assert_eq!(decode(b"{}"), Err(DecodeError::NotEnvelope));
        assert_eq!(
            decode(&[MAGIC, &ld(1, &[])[..]].concat()),
            Err(DecodeError::NoObject)
        );
        let mut s = &[0x80u8][..];
        assert_eq!(varint(&mut s), Err(DecodeError::TruncatedVarint));
        let mut s = &[0xffu8; 11][..];
        assert_eq!(varint(&mut s), Err(DecodeError::VarintTooLong));
        assert_eq!(fields(&[0x0b]).err(), Some(DecodeError::WireType(3)));
        assert_eq!(fields(&[0x09, 1]).err(), Some(DecodeError::Truncated64));
        assert_eq!(fields(&[0x0d, 1]).err(), Some(DecodeError::Truncated32));
        assert_eq!(
            fields(&[0x0a, 5, 1]).err(),
            Some(DecodeError::TruncatedBytes)
        );
        // A Pod whose spec is cut short: the message's path comes first.
        let pod = [ld(1, &ld(1, b"p")), ld(2, &[0x12, 9])].concat();
        assert_eq!(
            decode(&envelope(b"v1", b"Pod", &pod))
                .unwrap_err()
                .to_string(),
            "spec: truncated length-delimited field"
        );
        // A name sent as a number.
        let pod = ld(1, &int(1, 7));
        assert_eq!(
            decode(&envelope(b"v1", b"Pod", &pod))
                .unwrap_err()
                .to_string(),
            "metadata.name: expected a length-delimited value"
        );
        let pod = ld(1, &ld(1, &[0xff]));
        assert_eq!(
            decode(&envelope(b"v1", b"Pod", &pod))
                .unwrap_err()
                .to_string(),
            "metadata.name: not UTF-8"
        );
    }

    #[test]
    fn a_service_with_a_named_target_port_and_a_node_port() {
        let port = [
            ld(1, b"80-8000"),
            ld(2, b"TCP"),
            int(3, 80),
            ld(4, &[int(1, 1), ld(3, b"http")].concat()),
            int(5, 30416),
        ]
        .concat();
        let spec = [ld(1, &port), ld(4, b"NodePort"), ld(3, b"")].concat();
        let svc = [ld(1, &ld(1, b"web")), ld(2, &spec)].concat();
        let v = decode(&envelope(b"v1", b"Service", &svc)).unwrap();
        assert_eq!(
            v["spec"],
            json!({"type": "NodePort", "ports": [{"name": "80-8000", "protocol": "TCP",
                "port": 80, "targetPort": "http", "nodePort": 30416}]})
        );
    }
}
