//! Every wait on a registry is bounded and every input from one is capped: a
//! registry that accepts and never answers, a manifest request left hanging, a
//! blob that trickles a byte at a time, a manifest body that never ends all fail
//! within a few timeouts with an error that names the registry and what timed
//! out; a manifest listing one layer twice pulls.

use std::time::Duration;

use berth_tests::registry_fixtures::*;
use berth_tests::{require_root, run_ok, TestRoot};

/// What `berth pull` is given as its timeout in these tests.
const TIMEOUT: &str = "2s";
/// The most a failing pull may take: a few timeouts, far below the minute the
/// faults hold their connections.
const BOUND: Duration = Duration::from_secs(20);

/// A registry holding `repo:t`: one image whose layers are `layers` (tar entries).
fn seeded(repo: &str, layers: &[Vec<u8>]) -> (Registry, String) {
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let m = layout.image(layers, "linux", "amd64");
    layout.tag(&m, "t");
    layout.push_with_skopeo("t", &format!("{}/{repo}:t", reg.host()), &[]);
    let manifest = std::fs::read(layout.dir().join("blobs/sha256").join(&m.digest[7..])).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (reg, layer)
}

/// Pulls `name` with the short timeout, expecting it to fail within [`BOUND`]; returns stderr.
fn pull_fails_quickly(r: &TestRoot, name: &str) -> String {
    let mut pull = berth_cmd(r);
    pull.env("BERTH_REGISTRY_TIMEOUT", TIMEOUT)
        .args(["pull", name]);
    // Bounded memory too: a body without end must not be buffered.
    let (out, took) = run_bounded(&mut with_address_space_limit(&pull, 2 << 30), BOUND);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        took < BOUND,
        "pull of {name} still running after {took:?}: {err}"
    );
    assert!(!out.status.success(), "pull of {name} succeeded");
    err
}

#[test]
fn registry_that_never_answers_times_out() {
    require_root();
    let silent = SilentServer::start();
    let r = TestRoot::new();
    let err = pull_fails_quickly(&r, &format!("{}/app:t", silent.host()));
    // HTTPS: no TLS handshake; then plain HTTP: no response headers.
    assert!(err.contains(&silent.host()), "{err}");
    assert!(err.contains("TLS handshake) within 2s"), "{err}");
    assert!(err.contains("no response headers within 2s"), "{err}");
}

#[test]
fn hanging_manifest_request_times_out() {
    require_root();
    let (reg, _) = seeded("bounds/hang", &[tar_of(&[("a", b"a".to_vec())])]);
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject("GET", "/manifests/", Fault::Hang, 100);
    let r = TestRoot::new();
    let err = pull_fails_quickly(&r, &format!("{}/bounds/hang:t", proxy.host()));
    assert!(
        err.contains(&format!("registry {}", proxy.host()))
            && err.contains("/manifests/t")
            && err.contains("no response headers within 2s"),
        "{err}"
    );
    let asked = proxy
        .seen()
        .iter()
        .filter(|q| q.target.contains("/manifests/"))
        .count();
    assert_eq!(asked, 1, "a timeout is not retried");
}

#[test]
fn trickling_blob_fails_as_stalled() {
    require_root();
    let (reg, layer) = seeded("bounds/trickle", &[tar_of(&[("n", noise(64 << 10, 3))])]);
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject("GET", &format!("/blobs/{layer}"), Fault::Trickle, 100);
    let r = TestRoot::new();
    let err = pull_fails_quickly(&r, &format!("{}/bounds/trickle:t", proxy.host()));
    assert!(
        err.contains(&format!("registry {}", proxy.host()))
            && err.contains(&layer)
            && err.contains("bytes in 2s (slower than 1024 bytes/s)"),
        "{err}"
    );
}

#[test]
fn endless_manifest_is_cut_at_4_mib() {
    require_root();
    let (reg, _) = seeded("bounds/huge", &[tar_of(&[("a", b"a".to_vec())])]);
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject("GET", "/manifests/", Fault::Endless, 100);
    let r = TestRoot::new();
    let err = pull_fails_quickly(&r, &format!("{}/bounds/huge:t", proxy.host()));
    assert!(
        err.contains(&format!("{}/bounds/huge:t", proxy.host()))
            && err.contains("manifest larger than 4194304 bytes"),
        "{err}"
    );
}

#[test]
fn manifest_listing_a_layer_twice_pulls() {
    require_root();
    let layer = tar_of(&[("same.txt", b"same layer twice\n".to_vec())]);
    let top = tar_of(&[("top.txt", b"top\n".to_vec())]);
    let (reg, first) = seeded("bounds/twice", &[layer.clone(), top, layer]);
    let r = TestRoot::new();
    let name = format!("{}/bounds/twice:t", reg.host());
    run_ok(berth_cmd(&r).args(["pull", &name]));
    // The image keeps all three layers, the repeated one stored once.
    let out = run_ok(berth_cmd(&r).args(["inspect", "--format", "{{json .RootFS.Layers}}", &name]));
    let layers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert_eq!(layers[0], layers[2]);
    assert!(r.store().join("blobs/sha256").join(&first[7..]).is_file());
    // Each position of the chain was unpacked: three snapshots.
    let snapshots = std::fs::read_dir(r.store().join("snapshots"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("meta.json").is_file())
        .count();
    assert_eq!(snapshots, 3);
}
