//! API errors as Kubernetes `Status` objects (`{"kind":"Status","status":"Failure",
//! "reason":"NotFound","code":404,"message":...}`), which kubectl prints as they are.

use serde_json::{json, Value};

use super::patch::PatchError;
use berth_kube::kinds::Kind;
use berth_kube::structural::{Cause, ValidationError};
use berth_objectstore::StoreError;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The `Status` reason (`NotFound`, `Invalid`, ...).
    pub reason: &'static str,
    /// The message kubectl prints.
    pub message: String,
    /// `details`, when there are any.
    pub details: Option<Value>,
}

impl ApiError {
    /// A 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// A 404 for a path that names nothing served.
    pub fn no_route(path: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
            details: None,
        }
    }

    /// A 405 for a verb the resource does not allow.
    pub fn method_not_allowed(what: &str) -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({what})"
            ),
            details: None,
        }
    }

    /// A 415 for a body type the verb does not take.
    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"),
            details: None,
        }
    }

    /// A 500 for a failure of the daemon itself.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }

    /// The error of a validation failure of object `name` of `kind`.
    pub fn from_validation(kind: &Kind, name: &str, err: ValidationError) -> ApiError {
        match err {
            ValidationError::Invalid(causes) => {
                let list: Vec<String> = causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                let message = if list.len() == 1 {
                    format!("{} {name:?} is invalid: {}", kind.kind, list[0])
                } else {
                    format!("{} {name:?} is invalid: [{}]", kind.kind, list.join(", "))
                };
                ApiError {
                    code: 422,
                    reason: "Invalid",
                    message,
                    details: Some(json!({
                        "name": name,
                        "group": kind.group,
                        "kind": kind.kind,
                        "causes": causes.iter().map(cause_json).collect::<Vec<_>>(),
                    })),
                }
            }
            ValidationError::UnknownFields(fields) => {
                let list: Vec<String> = fields
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                ApiError::bad_request(format!(
                    "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                    list.join(", "),
                    kind = kind.kind,
                    version = kind.version,
                ))
            }
        }
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn cause_json(c: &Cause) -> Value {
    json!({"reason": c.reason, "message": c.message, "field": c.field})
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if let StoreError::Invalid { kind, name, error } = e {
            return ApiError::from_validation(kind, &name, error);
        }
        let message = e.to_string();
        let (code, reason, details) = match &e {
            StoreError::NotFound { resource, name } => {
                (404, "NotFound", Some(details(resource, name)))
            }
            StoreError::NamespaceNotFound { namespace } => {
                (404, "NotFound", Some(details("namespaces", namespace)))
            }
            StoreError::AlreadyExists { resource, name } => {
                (409, "AlreadyExists", Some(details(resource, name)))
            }
            StoreError::Conflict { resource, name } => {
                (409, "Conflict", Some(details(resource, name)))
            }
            StoreError::BadRequest(_) => (400, "BadRequest", None),
            StoreError::Gone { .. } => (410, "Expired", None),
            StoreError::Invalid { .. } => (422, "Invalid", None),
            StoreError::Journal(_) => (500, "InternalError", None),
        };
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> ApiError {
        match e {
            PatchError::TestFailed { .. } | PatchError::Missing { .. } => ApiError {
                code: 422,
                reason: "Invalid",
                message: e.to_string(),
                details: None,
            },
            PatchError::Invalid(_) => ApiError::bad_request(e.to_string()),
        }
    }
}

/// `details` naming an object: `{"name": ..., "group": ..., "kind": plural}`.
fn details(resource: &str, name: &str) -> Value {
    let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
    json!({"name": name, "group": group, "kind": kind})
}
