//! Property tests of the parsers that take input from images and registries: references,
//! manifests and configs, and tar layers. Each answers any input with a value or an error,
//! never a panic, and a layer never writes outside the directory it is unpacked into.

use std::path::Path;

use proptest::prelude::*;

use crate::digest::Digest;
use crate::manifest::{self, Manifest, PlatformSpec};
use crate::reference::Reference;
use crate::snapshot::unpack::{unpack_tar, UnpackOptions};

/// Strings built from the pieces references are made of.
fn reference_like() -> impl Strategy<Value = String> {
    let parts = prop::sample::select(vec![
        "docker.io/",
        "localhost:5000/",
        "[::1]:5000/",
        "quay.io/",
        "library/",
        "a",
        "B",
        "0",
        "-",
        "_",
        "__",
        ".",
        "/",
        ":",
        ":tag",
        "@",
        "@sha256:",
        "sha256:",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "é",
        " ",
    ]);
    prop::collection::vec(parts, 0..12).prop_map(|p| p.concat())
}

/// A valid image manifest and index, as bytes to mutate.
fn manifest_samples() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let d = format!("sha256:{}", "ab".repeat(32));
    let image = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": 7},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 7}],
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [{"mediaType": manifest::OCI_MANIFEST, "digest": d, "size": 7,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    });
    vec![
        (Some(manifest::OCI_MANIFEST), image.to_string().into_bytes()),
        (None, image.to_string().into_bytes()),
        (Some(manifest::OCI_INDEX), index.to_string().into_bytes()),
        (None, index.to_string().into_bytes()),
    ]
}

/// Byte edits: (position, new byte), positions taken modulo the length.
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 0..8)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = *b;
        }
        bytes.truncate(bytes.len() - cut % bytes.len());
    }
    bytes
}

/// A layer aiming outside its root in the usual ways, to mutate.
fn hostile_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            let _ = h.set_link_name(l);
        }
        let _ = h.set_path(name);
        h.set_cksum();
        let _ = b.append(&h, data);
    };
    add("dir/", tar::EntryType::Directory, None, b"");
    add("dir/file", tar::EntryType::Regular, None, b"hello");
    add("up", tar::EntryType::Symlink, Some("../outside"), b"");
    add("up/escaped", tar::EntryType::Regular, None, b"x");
    add("abs", tar::EntryType::Symlink, Some("/"), b"");
    add("hard", tar::EntryType::Link, Some("../outside/victim"), b"");
    add("dir/.wh.file", tar::EntryType::Regular, None, b"");
    add("dir/.wh..wh..opq", tar::EntryType::Regular, None, b"");
    b.into_inner().unwrap_or_default()
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn references_parse_or_fail_and_print_back(s in reference_like()) {
        if let Ok(r) = Reference::parse(&s) {
            let again = Reference::parse(&r.to_string());
            prop_assert!(again.is_ok(), "{s:?} -> {r} does not parse again");
            prop_assert_eq!(again.map(|a| a.to_string()).unwrap_or_default(), r.to_string());
        }
    }

    #[test]
    fn references_never_panic(s in "\\PC{0,120}") {
        let _ = Reference::parse(&s);
        let _ = Reference::parse_named(&s);
    }

    #[test]
    fn manifests_and_configs_never_panic(
        sample in 0usize..4,
        edits in edits(),
        cut in any::<usize>(),
    ) {
        let (media_type, bytes) = manifest_samples().swap_remove(sample);
        let bytes = mutate(bytes, &edits, cut);
        let digest = Digest::sha256_of(&bytes);
        if let Ok(Manifest::Index(index)) = Manifest::parse(&digest, media_type, &bytes) {
            let _ = manifest::select_platform(&digest, &index, &PlatformSpec::host());
        }
        let _ = manifest::parse_config(&digest, &bytes);
    }

    #[test]
    fn mutated_layers_stay_inside_their_root(edits in edits(), cut in any::<usize>()) {
        let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir(&root).map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::create_dir(&outside).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let layer = mutate(hostile_tar(), &edits, cut);
        let options = UnpackOptions { preserve_ownership: false, privileged: false };
        let _ = unpack_tar(&layer[..], &root, &options);
        prop_assert!(dir_is_empty(&outside), "a layer wrote outside its root");
    }
}
