//! The admission chain every create, update and patch through the API passes: the
//! defaulters, then the structural checks, then the validators, as the daemon was assembled
//! (the API server itself knows no kind's rules).

use berth_kube::kinds::Kind;
use berth_kube::structural::{self, Defaulter, FieldValidation, ValidationError, Validator};
use serde_json::Value;

/// Defaulters and validators, in the order they run.
#[derive(Clone, Default)]
pub struct AdmissionChain {
    /// Run first, in order, on every object written.
    pub defaulters: Vec<Defaulter>,
    /// Run after the structural checks, in order; the first failure answers.
    pub validators: Vec<Validator>,
}

impl AdmissionChain {
    /// Defaults `obj` of `kind` and checks it; `fv` is the client's field validation.
    pub fn admit(
        &self,
        kind: &'static Kind,
        obj: &mut Value,
        fv: FieldValidation,
    ) -> Result<(), ValidationError> {
        for default in &self.defaulters {
            default(kind, obj);
        }
        structural::structural(kind, obj)?;
        for validator in &self.validators {
            validator(kind, obj, fv)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use berth_kube::kinds;
    use berth_kube::structural::Cause;
    use serde_json::json;

    use super::*;

    fn label(_: &'static Kind, obj: &mut Value) {
        obj["metadata"]["labels"] = json!({"defaulted": "yes"});
    }

    fn needs_label(
        _: &'static Kind,
        obj: &Value,
        _: FieldValidation,
    ) -> Result<(), ValidationError> {
        match obj["metadata"]["labels"]["defaulted"].as_str() {
            Some("yes") => Ok(()),
            _ => Err(ValidationError::Invalid(vec![Cause::required(
                "metadata.labels",
            )])),
        }
    }

    #[test]
    fn defaulters_run_before_validators() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let only_validator = AdmissionChain {
            defaulters: vec![],
            validators: vec![needs_label],
        };
        assert!(only_validator
            .admit(
                &kinds::CONFIG_MAP,
                &mut obj.clone(),
                FieldValidation::Strict
            )
            .is_err());
        let chain = AdmissionChain {
            defaulters: vec![label],
            validators: vec![needs_label],
        };
        chain
            .admit(&kinds::CONFIG_MAP, &mut obj, FieldValidation::Strict)
            .unwrap();
        assert_eq!(obj["metadata"]["labels"]["defaulted"], "yes");
    }

    #[test]
    fn an_empty_chain_still_runs_the_structural_checks() {
        let mut nameless =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name"}});
        assert!(AdmissionChain::default()
            .admit(&kinds::CONFIG_MAP, &mut nameless, FieldValidation::Strict)
            .is_err());
    }
}
