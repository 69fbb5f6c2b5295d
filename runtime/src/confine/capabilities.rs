//! The five capability sets of `process.capabilities`.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::ConfineError;

/// The spec's capability sets in the `caps` crate's terms. A set the spec
/// leaves out is empty, as in runc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CapabilitySets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet, ConfineError> {
    let mut out = CapsHashSet::new();
    for cap in set.iter().flatten() {
        // oci-spec serialises a capability as its kernel name, "CAP_SYS_ADMIN".
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{cap:?}"));
        let parsed =
            Capability::from_str(&name).map_err(|_| ConfineError::UnknownCapability(name))?;
        out.insert(parsed);
    }
    Ok(out)
}

fn caps_err(what: impl Into<String>) -> impl FnOnce(caps::errors::CapsError) -> ConfineError {
    let what = what.into();
    move |source| ConfineError::Capabilities { what, source }
}

impl CapabilitySets {
    /// Converts and validates the spec's sets.
    pub(super) fn from_spec(spec: &LinuxCapabilities) -> Result<Self, ConfineError> {
        Ok(CapabilitySets {
            bounding: convert(spec.bounding())?,
            effective: convert(spec.effective())?,
            inheritable: convert(spec.inheritable())?,
            permitted: convert(spec.permitted())?,
            ambient: convert(spec.ambient())?,
        })
    }

    /// Drops every capability the running kernel knows that the bounding set leaves out.
    /// Needs `CAP_SETPCAP`, so it runs before the user switch.
    pub(super) fn drop_bounding(&self) -> Result<(), ConfineError> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(caps_err(format!("drop {cap} from the bounding set")))?;
            }
        }
        Ok(())
    }

    /// Sets inheritable, effective and permitted (in an order the kernel accepts at
    /// every step: effective stays within permitted until permitted shrinks), then
    /// the ambient set. Capabilities the running kernel does not know are skipped, as runc does.
    pub(super) fn apply(&self) -> Result<(), ConfineError> {
        let supported = caps::runtime::thread_all_supported();
        let known = |set: &CapsHashSet| -> CapsHashSet {
            let (ok, unknown): (CapsHashSet, CapsHashSet) =
                set.iter().partition(|c| supported.contains(c));
            if !unknown.is_empty() {
                tracing::warn!(?unknown, "capabilities unknown to this kernel are ignored");
            }
            ok
        };
        caps::set(None, CapSet::Inheritable, &known(&self.inheritable))
            .map_err(caps_err("set the inheritable set"))?;
        caps::set(None, CapSet::Effective, &known(&self.effective))
            .map_err(caps_err("set the effective set"))?;
        caps::set(None, CapSet::Permitted, &known(&self.permitted))
            .map_err(caps_err("set the permitted set"))?;
        // The kernel raises an ambient capability only if it is both permitted and
        // inheritable; specs (runc's default among them) often list ambient
        // capabilities that are not inheritable, and runc then warns and goes on.
        caps::clear(None, CapSet::Ambient).map_err(caps_err("clear the ambient set"))?;
        for cap in known(&self.ambient) {
            if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
                tracing::warn!(%cap, error = %e, "ambient capability not raised (not inheritable and permitted)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_set_and_missing_sets_are_empty() {
        let spec: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
                "effective": ["CAP_CHOWN"],
                "ambient": ["CAP_NET_BIND_SERVICE"]}"#,
        )
        .unwrap();
        let sets = CapabilitySets::from_spec(&spec).unwrap();
        assert_eq!(sets.bounding.len(), 2);
        assert!(sets.bounding.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(sets.effective.contains(&Capability::CAP_CHOWN));
        assert!(sets.ambient.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(sets.permitted.is_empty());
        assert!(sets.inheritable.is_empty());
    }

    #[test]
    fn every_oci_capability_has_a_kernel_counterpart() {
        let names: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        let json = serde_json::json!({ "bounding": names });
        let spec: LinuxCapabilities = serde_json::from_value(json).unwrap();
        let sets = CapabilitySets::from_spec(&spec).unwrap();
        assert_eq!(sets.bounding, caps::all());
    }

    #[test]
    fn unknown_names_are_refused_when_the_spec_is_read() {
        let bad = serde_json::from_str::<LinuxCapabilities>(r#"{"bounding": ["CAP_FLY"]}"#);
        assert!(bad.is_err());
    }
}
