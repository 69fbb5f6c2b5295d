//! Field errors as the API server reports them: a field path (`spec.containers[0].image`)
//! and what is wrong with the value there.

use std::fmt;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path from the object's root, e.g. `spec.containers[0].ports[1].containerPort`.
    pub path: String,
    /// What is wrong, e.g. `Required value` or `unknown field "images"`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl FieldError {
    /// A field that must be set is missing or empty.
    pub fn required(path: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: "Required value".to_string(),
        }
    }

    /// A field that must be set is missing, with why.
    pub fn required_because(path: impl Into<String>, detail: &str) -> Self {
        FieldError {
            path: path.into(),
            message: format!("Required value: {detail}"),
        }
    }

    /// The value is malformed; `detail` says what a good one looks like.
    pub fn invalid(path: impl Into<String>, value: impl fmt::Display, detail: &str) -> Self {
        FieldError {
            path: path.into(),
            message: format!("Invalid value: \"{value}\": {detail}"),
        }
    }

    /// The value is not one of a fixed set.
    pub fn unsupported(path: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        FieldError {
            path: path.into(),
            message: format!("Unsupported value: \"{value}\": supported values: {list}"),
        }
    }

    /// The value appears twice where it must be unique.
    pub fn duplicate(path: impl Into<String>, value: impl fmt::Display) -> Self {
        FieldError {
            path: path.into(),
            message: format!("Duplicate value: \"{value}\""),
        }
    }

    /// The field may not be set here.
    pub fn forbidden(path: impl Into<String>, detail: &str) -> Self {
        FieldError {
            path: path.into(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// The field does not exist in the object's schema.
    pub fn unknown(path: impl Into<String>, name: &str) -> Self {
        FieldError {
            path: path.into(),
            message: format!("unknown field \"{name}\""),
        }
    }

    /// The value has the wrong JSON type.
    pub fn wrong_type(path: impl Into<String>, detail: String) -> Self {
        FieldError {
            path: path.into(),
            message: detail,
        }
    }
}

/// Every invalid field of one object (never empty when returned as an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(", "))
    }
}

impl FieldErrors {
    /// Adds an error.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// `Ok` when nothing was found.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// Builds child paths: `path(&p, "spec")`, `index(&p, 0)`.
pub(crate) fn child(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
