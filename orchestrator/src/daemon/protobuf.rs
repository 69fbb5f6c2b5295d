//! The few protobuf bodies kubectl sends: its `create namespace|configmap|secret NAME`
//! generators encode with Kubernetes' protobuf envelope (`k8s\0` + `runtime.Unknown`), and
//! they get no JSON fallback. These three types (metadata name, generateName, namespace,
//! labels, annotations; ConfigMap data, binaryData, immutable; Secret data, stringData, type,
//! immutable; Namespace spec.finalizers) are decoded into JSON; any other protobuf body is
//! refused.

use base64::Engine;
use serde_json::{json, Map, Value};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// One decoded field: its number and raw value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of one message, in order (unknown wire types end decoding with an error).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((number, Field::Varint(varint(&mut buf)?))),
            1 => buf = buf.get(8..).ok_or("truncated 64-bit field")?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| "length overflow")?;
                let data = buf.get(..len).ok_or("truncated length-delimited field")?;
                out.push((number, Field::Bytes(data)));
                buf = &buf[len..];
            }
            5 => buf = buf.get(4..).ok_or("truncated 32-bit field")?,
            other => return Err(format!("unsupported wire type {other}")),
        }
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn text(data: &[u8]) -> Result<String, String> {
    String::from_utf8(data.to_vec()).map_err(|_| "string field is not UTF-8".to_string())
}

fn bytes_of<'a>(f: &Field<'a>) -> Result<&'a [u8], String> {
    match f {
        Field::Bytes(b) => Ok(b),
        Field::Varint(_) => Err("expected a length-delimited field".into()),
    }
}

/// A `map<string, string>` (or `map<string, bytes>` with `b64`) entry list into JSON.
fn map_entry(data: &[u8], b64: bool, into: &mut Map<String, Value>) -> Result<(), String> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(data)? {
        match n {
            1 => k = text(bytes_of(&f)?)?,
            2 if b64 => v = json!(base64::engine::general_purpose::STANDARD.encode(bytes_of(&f)?)),
            2 => v = json!(text(bytes_of(&f)?)?),
            _ => {}
        }
    }
    into.insert(k, v);
    Ok(())
}

/// Inserts a string field unless it is empty (the encoder writes unset strings as "").
fn insert_text(map: &mut Map<String, Value>, key: &str, f: &Field<'_>) -> Result<(), String> {
    let s = text(bytes_of(f)?)?;
    if !s.is_empty() {
        map.insert(key.into(), json!(s));
    }
    Ok(())
}

fn object_meta(data: &[u8]) -> Result<Value, String> {
    let mut meta = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    for (n, f) in fields(data)? {
        match n {
            1 => insert_text(&mut meta, "name", &f)?,
            2 => insert_text(&mut meta, "generateName", &f)?,
            3 => insert_text(&mut meta, "namespace", &f)?,
            11 => map_entry(bytes_of(&f)?, false, &mut labels)?,
            12 => map_entry(bytes_of(&f)?, false, &mut annotations)?,
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    Ok(Value::Object(meta))
}

/// Decodes a protobuf-enveloped Namespace, ConfigMap or Secret into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, f) in fields(rest)? {
        match n {
            1 => {
                for (m, g) in fields(bytes_of(&f)?)? {
                    match m {
                        1 => api_version = text(bytes_of(&g)?)?,
                        2 => kind = text(bytes_of(&g)?)?,
                        _ => {}
                    }
                }
            }
            2 => raw = Some(bytes_of(&f)?),
            _ => {}
        }
    }
    let raw = raw.ok_or("protobuf envelope without an object")?;
    if api_version != "v1" || !matches!(kind.as_str(), "Namespace" | "ConfigMap" | "Secret") {
        return Err(format!(
            "protobuf bodies are decoded for v1 Namespace, ConfigMap and Secret only, not {api_version} {kind}"
        ));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let (mut data, mut binary, mut string_data) = (Map::new(), Map::new(), Map::new());
    let mut finalizers = Vec::new();
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n) {
            (_, 1) => {
                obj.insert("metadata".into(), object_meta(bytes_of(&f)?)?);
            }
            ("Namespace", 2) => {
                for (m, g) in fields(bytes_of(&f)?)? {
                    if m == 1 {
                        finalizers.push(json!(text(bytes_of(&g)?)?));
                    }
                }
            }
            ("ConfigMap", 2) => map_entry(bytes_of(&f)?, false, &mut data)?,
            ("ConfigMap", 3) => map_entry(bytes_of(&f)?, true, &mut binary)?,
            ("Secret", 2) => map_entry(bytes_of(&f)?, true, &mut data)?,
            ("Secret", 3) => insert_text(&mut obj, "type", &f)?,
            ("Secret", 4) => map_entry(bytes_of(&f)?, false, &mut string_data)?,
            ("ConfigMap", 4) | ("Secret", 5) => {
                if let Field::Varint(v) = f {
                    obj.insert("immutable".into(), json!(v != 0));
                }
            }
            _ => {}
        }
    }
    for (name, map) in [
        ("data", data),
        ("binaryData", binary),
        ("stringData", string_data),
    ] {
        if !map.is_empty() {
            obj.insert(name.into(), Value::Object(map));
        }
    }
    if !finalizers.is_empty() {
        obj.insert("spec".into(), json!({"finalizers": finalizers}));
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![(field << 3) | 2, data.len() as u8];
        v.extend_from_slice(data);
        v
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
        let type_meta = [ld(1, b"v1"), ld(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &secret)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "creds", "namespace": "default", "labels": {"app": "web"}},
                   "type": "Opaque", "data": {"user": "YWRtaW4="}})
        );
        let type_meta = [ld(1, b"apps/v1"), ld(2, b"Deployment")].concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &[])].concat();
        assert!(decode(&body)
            .unwrap_err()
            .contains("Namespace, ConfigMap and Secret only"));
        assert!(decode(b"{}").is_err());
    }
}
