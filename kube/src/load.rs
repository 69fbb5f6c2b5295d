//! Manifests from files, directories and stdin: every document is parsed, decoded strictly,
//! defaulted and validated, and every error is reported as `FILE:LINE: PATH: MESSAGE`.
//! Nothing is returned when any document is invalid, so a caller applies all or nothing.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::field::{index, FieldErrors};
use super::object::Object;
use super::yaml::{parse_documents, YamlDocument, MAX_TEXT};

/// One valid object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The object, defaulted and validated.
    pub object: Object,
    /// The file it came from (`-` for stdin).
    pub file: String,
    /// The line its document starts on.
    pub line: usize,
}

/// One problem in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// The file (`-` for stdin).
    pub file: String,
    /// Line of the offending field (or of its nearest enclosing field).
    pub line: usize,
    /// Column of the same.
    pub col: usize,
    /// `path: message`, or the YAML syntax error.
    pub message: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Some documents are invalid; each problem is listed.
    #[error("{}", list(.0))]
    Invalid(Vec<ManifestProblem>),
}

fn list(problems: &[ManifestProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `path`: a file, a directory (its `.yaml`, `.yml` and `.json` files in name order,
/// not recursing, as kubectl does) or `-` for stdin. Empty documents are skipped.
pub fn load_path(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
    if path == Path::new("-") {
        let text = read_limited(std::io::stdin()).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return load_str("-", &text);
    }
    let read_err = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        let file = std::fs::File::open(path).map_err(read_err)?;
        let text = read_limited(file).map_err(read_err)?;
        return load_str(&path.display().to_string(), &text);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::File::open(&file)
            .and_then(read_limited)
            .map_err(|source| ManifestError::Read {
                path: file.clone(),
                source,
            })?;
        match load_str(&file.display().to_string(), &text) {
            Ok(m) => all.extend(m),
            Err(ManifestError::Invalid(p)) => problems.extend(p),
            Err(e) => return Err(e),
        }
    }
    if problems.is_empty() {
        Ok(all)
    } else {
        Err(ManifestError::Invalid(problems))
    }
}

/// Reads manifest text, refusing more than [`MAX_TEXT`] bytes.
fn read_limited(reader: impl Read) -> std::io::Result<String> {
    let mut text = String::new();
    reader.take(MAX_TEXT as u64 + 1).read_to_string(&mut text)?;
    if text.len() > MAX_TEXT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_TEXT} bytes"),
        ));
    }
    Ok(text)
}

/// Loads every document of `text`, naming `file` in errors. A `kind: List` document
/// contributes its `items`.
pub fn load_str(file: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let docs = parse_documents(text).map_err(|e| {
        ManifestError::Invalid(vec![ManifestProblem {
            file: file.to_string(),
            line: e.pos.line,
            col: e.pos.col,
            message: e.message,
        }])
    })?;
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for doc in &docs {
        for (prefix, value) in items(&doc.value) {
            match admit(value.clone()) {
                Ok(object) => objects.push(Manifest {
                    object,
                    file: file.to_string(),
                    line: doc.position(&prefix).line,
                }),
                Err(errors) => {
                    let mut found = locate(file, doc, &prefix, errors);
                    found.sort_by_key(|p| p.line);
                    problems.extend(found);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(ManifestError::Invalid(problems))
    }
}

/// Decodes, defaults and validates one object, as the API server does on create: the one
/// function to call on every object that is about to be stored.
pub fn admit(value: Value) -> Result<Object, FieldErrors> {
    let mut object = Object::from_value(value)?;
    object.apply_defaults();
    object.validate()?;
    Ok(object)
}

/// The objects of a document with the path prefix of each: the document itself, or the
/// items of a `v1` `List`; nothing for an empty document.
fn items(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Null => Vec::new(),
        Value::Object(map)
            if map.get("kind").and_then(Value::as_str) == Some("List")
                && map.get("apiVersion").and_then(Value::as_str) == Some("v1") =>
        {
            match map.get("items") {
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (index("items", i), v))
                    .collect(),
                _ => Vec::new(),
            }
        }
        v => vec![(String::new(), v)],
    }
}

fn locate(
    file: &str,
    doc: &YamlDocument,
    prefix: &str,
    errors: FieldErrors,
) -> Vec<ManifestProblem> {
    errors
        .0
        .into_iter()
        .map(|e| {
            let full = match (prefix.is_empty(), e.path.is_empty()) {
                (true, _) => e.path.clone(),
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{}", e.path),
            };
            let pos = doc.position(&full);
            let mut e = e;
            e.path = full;
            ManifestProblem {
                file: file.to_string(),
                line: pos.line,
                col: pos.col,
                message: e.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(dir: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/kube")
            .join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "err"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus files in {}", dir.display());
        files
    }

    fn load_named(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
        let name = path.file_name().unwrap().to_string_lossy();
        load_str(&name, &std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn valid_corpus_loads() {
        for file in corpus("valid") {
            let loaded = load_named(&file).unwrap_or_else(|e| panic!("{}:\n{e}", file.display()));
            assert!(!loaded.is_empty(), "{}", file.display());
        }
    }

    #[test]
    fn invalid_corpus_fails_with_the_expected_messages() {
        let mut mismatches = Vec::new();
        for file in corpus("invalid") {
            let expected = std::fs::read_to_string(file.with_extension("err"))
                .unwrap_or_else(|e| panic!("{}: no .err file: {e}", file.display()));
            match load_named(&file) {
                Ok(_) => mismatches.push(format!("{}: accepted", file.display())),
                Err(e) if e.to_string() != expected.trim_end() => mismatches.push(format!(
                    "{}:\n--- expected\n{}\n--- got\n{e}",
                    file.display(),
                    expected.trim_end()
                )),
                Err(_) => {}
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    }

    #[test]
    fn hello_example_loads_as_a_pod_and_a_service() {
        let m = load_path(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/kube/valid/hello.yaml"),
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].object.describe(), "Pod default/hello-pod");
        assert_eq!(m[0].line, 1);
        assert_eq!(m[1].line, 14);
        let Object::Service(svc) = &m[1].object else {
            panic!("not a service")
        };
        assert_eq!(svc.spec.ports[0].port, 8200);
        assert_eq!(
            svc.spec.ports[0].target_port,
            Some(crate::IntOrString::Int(8000))
        );
        assert_eq!(svc.spec.type_(), "ClusterIP");
    }

    #[test]
    fn secrets_merge_string_data_and_lists_expand() {
        let m = load_path(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data/kube/valid/web-deployment.yaml"),
        )
        .unwrap();
        let Object::Secret(s) = &m[1].object else {
            panic!("not a secret")
        };
        assert!(s.string_data.is_empty());
        assert_eq!(s.value("user").unwrap(), b"admin");
        assert_eq!(s.value("password").unwrap(), b"secret");
        let m = load_path(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/kube/valid/list.json"),
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].object.describe(), "Service default/b");
    }

    #[test]
    fn a_directory_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: B\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let e = load_path(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("b.yml:4: metadata.name: Invalid value: \"B\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"), "{e}");
        std::fs::remove_file(dir.path().join("b.yml")).unwrap();
        assert_eq!(load_path(dir.path()).unwrap().len(), 1);
        let e = load_path(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(matches!(e, ManifestError::Read { .. }));
    }
}
