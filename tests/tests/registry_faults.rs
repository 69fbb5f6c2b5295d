//! Real faults between berth and a real registry, injected by a proxy:
//! a connection dropped mid-blob (resume with Range), 5xx then success
//! (retry), wrong bytes (digest error, nothing stored), and a 401 on an
//! expired token (refresh).

use berth_tests::registry_fixtures::*;
use berth_tests::{require_root, run_ok, TestRoot};

struct Seeded {
    reg: Registry,
    name: String,
    layer: String,
    layer_size: u64,
}

/// A registry holding `repo:t`, an image with one 2 MiB incompressible layer.
fn seeded(auth: Auth, repo: &str) -> Seeded {
    let reg = Registry::start(auth);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let m = layout.image(
        &[tar_of(&[("noise.bin", noise(2 << 20, 11))])],
        "linux",
        "amd64",
    );
    layout.tag(&m, "t");
    let creds = format!("{USER}:{PASSWORD}");
    let extra: Vec<&str> = if reg.token_server.is_some() {
        vec!["--dest-creds", &creds]
    } else {
        vec![]
    };
    layout.push_with_skopeo("t", &format!("{}/{repo}:t", reg.host()), &extra);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.dir().join("blobs/sha256").join(&m.digest[7..])).unwrap(),
    )
    .unwrap();
    Seeded {
        name: format!("{repo}:t"),
        layer: manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string(),
        layer_size: manifest["layers"][0]["size"].as_u64().unwrap(),
        reg,
    }
}

#[test]
fn dropped_connection_mid_blob_resumes_with_range() {
    require_root();
    let s = seeded(Auth::None, "faults/resume");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject(
        "GET",
        &format!("/blobs/{}", s.layer),
        Fault::DropAfter(700_000),
        1,
    );
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", proxy.host(), s.name),
    ]));
    let seen: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|q| q.target.contains(&s.layer))
        .collect();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(matches!(seen[0].fault, Some(Fault::DropAfter(_))));
    let range = seen[1]
        .range
        .clone()
        .expect("second request asks for the rest");
    let from: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .expect("bytes=N-");
    assert!(from > 0 && from <= 700_000, "resumed from {from}");
    let blob = std::fs::read(r.store().join("blobs/sha256").join(&s.layer[7..])).unwrap();
    assert_eq!(blob.len() as u64, s.layer_size);
    assert_eq!(sha256_digest(&blob), s.layer);
}

#[test]
fn server_errors_are_retried_then_succeed() {
    require_root();
    let s = seeded(Auth::None, "faults/retry");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject("GET", "/manifests/", Fault::Status(500), 2);
    proxy.inject("GET", &format!("/blobs/{}", s.layer), Fault::Status(503), 1);
    proxy.inject("GET", &format!("/blobs/{}", s.layer), Fault::Status(429), 1);
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", proxy.host(), s.name),
    ]));
    let faults = proxy.seen().iter().filter(|q| q.fault.is_some()).count();
    assert_eq!(faults, 4, "every injected fault was hit and retried");
    assert!(r.store().join("blobs/sha256").join(&s.layer[7..]).is_file());
}

#[test]
fn persistent_server_errors_give_up_with_a_clear_error() {
    require_root();
    let s = seeded(Auth::None, "faults/giveup");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject("GET", "/manifests/", Fault::Status(500), 1000);
    let r = TestRoot::new();
    let err = run_fail(berth_cmd(&r).args([
        "pull",
        "--retries",
        "2",
        &format!("{}/{}", proxy.host(), s.name),
    ]));
    assert!(
        err.contains(&proxy.host()) && err.contains("faults/giveup") && err.contains("500"),
        "{err}"
    );
    let attempts = proxy
        .seen()
        .iter()
        .filter(|q| q.target.contains("/manifests/"))
        .count();
    assert_eq!(attempts, 3, "one try and two retries");
}

#[test]
fn wrong_bytes_fail_the_digest_check_and_store_nothing() {
    require_root();
    let s = seeded(Auth::None, "faults/corrupt");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject("GET", &format!("/blobs/{}", s.layer), Fault::Corrupt, 1);
    let r = TestRoot::new();
    let name = format!("{}/{}", proxy.host(), s.name);
    let err = run_fail(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
    assert!(
        err.contains("digest mismatch") && err.contains(&s.layer),
        "{err}"
    );
    assert!(
        !r.store().join("blobs/sha256").join(&s.layer[7..]).exists(),
        "corrupt blob not stored"
    );
    // The corrupt blob's ingest is discarded; blobs cut short by the failed pull
    // may stay in ingest/ to be resumed, as containerd's content store does.
    assert!(
        !r.store()
            .join("ingest")
            .join(format!("sha256-{}", &s.layer[7..]))
            .exists(),
        "corrupt data not kept for resuming"
    );
    let images: Vec<_> = std::fs::read_dir(r.store().join("images"))
        .unwrap()
        .collect();
    assert!(images.is_empty(), "no image record for a failed pull");
    // The fault was one-off: a second pull succeeds.
    run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
}

#[test]
fn expired_token_is_refreshed_on_401() {
    require_root();
    let s = seeded(Auth::Token, "faults/token");
    let ts = s.reg.token_server.as_ref().unwrap();
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject(
        "GET",
        &format!("/blobs/{}", s.layer),
        Fault::Unauthorized,
        1,
    );
    let before = ts.count();
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", proxy.host(), s.name),
    ]));
    let layer_reqs: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|q| q.target.contains(&s.layer))
        .collect();
    assert_eq!(layer_reqs.len(), 2, "{layer_reqs:?}");
    assert!(matches!(layer_reqs[0].fault, Some(Fault::Unauthorized)));
    // One token for the pull, and a fresh one after the 401.
    assert_eq!(ts.count() - before, 2, "{:?}", ts.requests.lock().unwrap());
    assert!(r.store().join("blobs/sha256").join(&s.layer[7..]).is_file());
}

#[test]
fn redirect_to_blob_storage_drops_authorization() {
    require_root();
    // The same image (deterministic bytes) in a token registry and in a plain one
    // that plays the blob storage the first redirects to.
    let tok = seeded(Auth::Token, "faults/redirect");
    let plain = seeded(Auth::None, "faults/redirect");
    assert_eq!(tok.layer, plain.layer);
    let storage = FaultProxy::start(&plain.reg.host());
    let front = FaultProxy::start(&tok.reg.host());
    front.inject(
        "GET",
        &format!("/blobs/{}", tok.layer),
        Fault::Redirect(format!("http://{}", storage.host())),
        1,
    );
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", front.host(), tok.name),
    ]));
    let asked: Vec<_> = front
        .seen()
        .into_iter()
        .filter(|q| q.target.contains(&tok.layer))
        .collect();
    assert!(matches!(asked[0].fault, Some(Fault::Redirect(_))));
    assert!(
        asked[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{asked:?}"
    );
    let served: Vec<_> = storage
        .seen()
        .into_iter()
        .filter(|q| q.target.contains(&tok.layer))
        .collect();
    assert_eq!(served.len(), 1, "the blob came from storage: {served:?}");
    assert_eq!(
        served[0].authorization, None,
        "Authorization must not follow the redirect"
    );
    assert!(r
        .store()
        .join("blobs/sha256")
        .join(&tok.layer[7..])
        .is_file());
}

#[test]
fn interrupted_pull_resumes_in_the_next_process() {
    require_root();
    let s = seeded(Auth::None, "faults/resume-later");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject(
        "GET",
        &format!("/blobs/{}", s.layer),
        Fault::DropAfter(900_000),
        1,
    );
    let r = TestRoot::new();
    let name = format!("{}/{}", proxy.host(), s.name);
    // No retries: the first pull fails and leaves the partial blob in ingest/.
    let err = run_fail(berth_cmd(&r).args(["pull", "--no-unpack", "--retries", "0", &name]));
    assert!(err.contains(&s.layer), "{err}");
    let partial = r
        .store()
        .join("ingest")
        .join(format!("sha256-{}", &s.layer[7..]))
        .join("data");
    let kept = std::fs::metadata(&partial)
        .expect("partial ingest kept")
        .len();
    assert!(kept > 0 && kept < s.layer_size, "kept {kept} bytes");
    // The next pull asks only for the rest.
    run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
    let layer_reqs: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|q| q.target.contains(&s.layer))
        .collect();
    assert_eq!(layer_reqs.len(), 2, "{layer_reqs:?}");
    assert_eq!(
        layer_reqs[1].range.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
    let blob = std::fs::read(r.store().join("blobs/sha256").join(&s.layer[7..])).unwrap();
    assert_eq!(sha256_digest(&blob), s.layer);
}

#[test]
fn push_retries_failed_upload_steps() {
    require_root();
    let s = seeded(Auth::None, "faults/push-src");
    let r = TestRoot::new();
    // Pull directly, then push through the proxy to a registry of its own
    // (nothing to mount), with the upload steps failing once each.
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", s.reg.host(), s.name),
    ]));
    let target = Registry::start(Auth::None);
    let proxy = FaultProxy::start(&target.host());
    proxy.inject("POST", "/blobs/uploads/", Fault::Status(502), 1);
    proxy.inject("PATCH", "/blobs/uploads/", Fault::Status(500), 1);
    proxy.inject("PUT", "/blobs/uploads/", Fault::Status(503), 1);
    proxy.inject("PUT", "/manifests/", Fault::Status(500), 1);
    let dest = format!("{}/pushed/app:t", proxy.host());
    run_ok(berth_cmd(&r).args(["tag", &format!("{}/{}", s.reg.host(), s.name), &dest]));
    run_ok(berth_cmd(&r).args(["push", &dest]));
    let faults = proxy.seen().iter().filter(|q| q.fault.is_some()).count();
    assert_eq!(faults, 4, "{:?}", proxy.seen());
    let raw = skopeo_raw(&format!("{}/pushed/app:t", target.host()), &[]);
    let src = skopeo_raw(&format!("{}/{}", s.reg.host(), s.name), &[]);
    assert_eq!(sha256_digest(&raw), sha256_digest(&src));
}

#[test]
fn retry_after_is_honoured() {
    require_root();
    let s = seeded(Auth::None, "faults/retry-after");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject("GET", "/manifests/", Fault::RetryAfter(429, 2), 1);
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args([
        "pull",
        "--no-unpack",
        &format!("{}/{}", proxy.host(), s.name),
    ]));
    let manifests: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|q| q.target.contains("/manifests/"))
        .collect();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    let waited = manifests[1].at.duration_since(manifests[0].at);
    // The default first backoff is 200 ms; the server asked for 2 s.
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "waited only {waited:?}"
    );
}

#[test]
fn corrupt_manifest_by_tag_fails_against_docker_content_digest() {
    require_root();
    let s = seeded(Auth::None, "faults/manifest");
    let proxy = FaultProxy::start(&s.reg.host());
    proxy.inject("GET", "/manifests/t", Fault::Corrupt, 1);
    let r = TestRoot::new();
    let name = format!("{}/{}", proxy.host(), s.name);
    let err = run_fail(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
    assert!(err.contains("manifest digest mismatch"), "{err}");
    assert!(stored_blobs(&r.store()).is_empty(), "nothing stored");
    run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
}
