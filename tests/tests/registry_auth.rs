//! Authentication against real registries: htpasswd Basic over TLS with a CA
//! trusted through a certs.d directory, token auth through a JWT token server,
//! credential helpers, and login/logout writing Docker's config format.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use berth_tests::registry_fixtures::*;
use berth_tests::{require_root, run_ok, TestRoot};

fn seed_image(work: &TestRoot, name: &str) -> OciLayout {
    let layout = OciLayout::new(&work.path(&format!("layout-{name}")));
    let m = layout.image(
        &[tar_of(&[(
            "hello.txt",
            format!("hello {name}\n").into_bytes(),
        )])],
        "linux",
        "amd64",
    );
    layout.tag(&m, "t");
    layout
}

fn login(
    root: &TestRoot,
    server: &str,
    user: &str,
    password: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut child = berth_cmd(root)
        .args(["login", "--username", user, "--password-stdin"])
        .args(extra)
        .arg(server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth login");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn docker_config(root: &TestRoot) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(root.path("docker-config/config.json")).expect("config.json written"),
    )
    .expect("config.json is JSON")
}

#[test]
fn basic_auth_over_tls_with_certs_dir() {
    require_root();
    let reg = Registry::start(Auth::BasicTls);
    let work = TestRoot::new();
    let host = reg.host();
    let name = format!("{host}/secure/app:t");
    let certs = reg.certs_dir();
    let certs_arg = ["--certs-dir", certs.to_str().unwrap()];

    // skopeo pushes with credentials, trusting the same CA.
    let layout = seed_image(&work, "secure");
    let cert_dir = certs.join(&host);
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--dest-creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("--dest-cert-dir={}", cert_dir.display()))
            .arg(format!("oci:{}:t", layout.dir().display()))
            .arg(format!("docker://{name}")),
    );

    let r = TestRoot::new();
    // Without the CA berth refuses the certificate (and does not silently use HTTP).
    let err = run_fail(berth_cmd(&r).args(["pull", &name]));
    assert!(
        err.contains(&host) && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    // With the CA but without credentials: the registry's 401 is reported.
    let err = run_fail(berth_cmd(&r).args(["pull"]).args(certs_arg).arg(&name));
    assert!(err.contains("401"), "{err}");

    // A wrong password does not log in and writes nothing.
    let out = login(&r, &host, USER, "wrong", &certs_arg);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("login to"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!r.path("docker-config/config.json").exists());

    // The right one writes Docker's format: auths[host].auth = base64(user:pass).
    let out = login(&r, &host, USER, PASSWORD, &certs_arg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let cfg = docker_config(&r);
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert_eq!(cfg["auths"][host.as_str()]["auth"], expected.as_str());
    let mode = std::fs::metadata(r.path("docker-config/config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "config.json is private");

    // skopeo reads the credentials berth wrote (Docker's format)...
    run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--authfile"])
            .arg(r.path("docker-config/config.json"))
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg(format!("docker://{name}")),
    );
    // ...and berth reads what `skopeo login` writes.
    let other = TestRoot::new();
    std::fs::create_dir_all(other.path("docker-config")).unwrap();
    run_ok(
        Command::new("skopeo")
            .args([
                "login",
                "--username",
                USER,
                "--password",
                PASSWORD,
                "--authfile",
            ])
            .arg(other.path("docker-config/config.json"))
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg(&host),
    );
    run_ok(
        berth_cmd(&other)
            .args(["pull", "--no-unpack"])
            .args(certs_arg)
            .arg(&name),
    );

    // Now pull and push work with the stored credentials.
    let out = run_ok(berth_cmd(&r).args(["pull"]).args(certs_arg).arg(&name));
    let digest = printed_digest(&out.stdout);
    let pushed = format!("{host}/secure/copy:t");
    run_ok(berth_cmd(&r).args(["tag", &name, &pushed]));
    run_ok(berth_cmd(&r).args(["push"]).args(certs_arg).arg(&pushed));
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg(format!("docker://{pushed}")),
    )
    .stdout;
    assert_eq!(sha256_digest(&raw), digest);

    // A registry listed as insecure (flag or daemon.json) is used without its CA.
    let fresh = TestRoot::new();
    std::fs::create_dir_all(fresh.path("docker-config")).unwrap();
    std::fs::copy(
        r.path("docker-config/config.json"),
        fresh.path("docker-config/config.json"),
    )
    .unwrap();
    run_ok(berth_cmd(&fresh).args(["pull", "--no-unpack", "--insecure-registry", &host, &name]));
    std::fs::write(
        fresh.path("daemon.json"),
        serde_json::json!({"insecure-registries": [host.clone()]}).to_string(),
    )
    .unwrap();
    let fresh2 = TestRoot::new();
    std::fs::create_dir_all(fresh2.path("docker-config")).unwrap();
    std::fs::copy(
        r.path("docker-config/config.json"),
        fresh2.path("docker-config/config.json"),
    )
    .unwrap();
    run_ok(
        berth_cmd(&fresh2)
            .env("BERTH_REGISTRY_CONFIG", fresh.path("daemon.json"))
            .args(["pull", "--no-unpack", &name]),
    );

    // Logout removes the entry; pulling fails again.
    let out = run_ok(berth_cmd(&r).args(["logout", &host]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    assert!(docker_config(&r)["auths"].get(host.as_str()).is_none());
    let err = run_fail(berth_cmd(&r).args(["pull"]).args(certs_arg).arg(&name));
    assert!(err.contains("401"), "{err}");
    let out = run_ok(berth_cmd(&r).args(["logout", &host]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Not logged in"));
}

#[test]
fn token_auth_login_push_pull_and_mount_scopes() {
    require_root();
    let reg = Registry::start(Auth::Token);
    let ts = reg.token_server.as_ref().expect("token server");
    let work = TestRoot::new();
    let host = reg.host();
    let first = format!("{host}/team/base:t");
    let second = format!("{host}/team/derived:t");

    // skopeo pushes through the token server too.
    let layout = seed_image(&work, "token");
    run_ok(
        Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &format!("{USER}:{PASSWORD}"),
            ])
            .arg(format!("oci:{}:t", layout.dir().display()))
            .arg(format!("docker://{first}")),
    );

    let r = TestRoot::new();
    // Anonymous pull is granted by the token server (pull only).
    let out = run_ok(berth_cmd(&r).args(["pull", &first]));
    let digest = printed_digest(&out.stdout);
    assert!(ts
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|q| q.account.is_none() && q.scopes == vec!["repository:team/base:pull".to_string()]));

    // Anonymous push is refused with a clear error.
    run_ok(berth_cmd(&r).args(["tag", &first, &second]));
    let err = run_fail(berth_cmd(&r).args(["push", &second]));
    assert!(err.contains(&host) && err.contains("team/derived"), "{err}");

    // Login checks the credentials at the token server (GET with Basic).
    let before = ts.count();
    let out = login(&r, &host, USER, PASSWORD, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ts.requests.lock().unwrap()[before..]
        .iter()
        .any(|q| q.method == "GET" && q.account.as_deref() == Some(USER)));
    let out = login(&r, &host, USER, "nope", &[]);
    assert!(!out.status.success());

    // Push to another repository: one token covers push there and pull from
    // the source repository, and the layer is mounted instead of uploaded.
    let before = ts.count();
    let out = run_ok(berth_cmd(&r).args(["push", &second]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Mounted from"), "{text}");
    let reqs = ts.requests.lock().unwrap()[before..].to_vec();
    assert!(
        reqs.iter().any(|q| q
            .scopes
            .contains(&"repository:team/derived:pull,push".to_string())
            && q.scopes.contains(&"repository:team/base:pull".to_string())),
        "one token request with both scopes: {reqs:?}"
    );
    assert!(
        reqs.len() <= 2,
        "tokens are cached across requests: {reqs:?}"
    );
    let raw = run_ok(
        Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                &format!("{USER}:{PASSWORD}"),
            ])
            .arg(format!("docker://{second}")),
    )
    .stdout;
    assert_eq!(sha256_digest(&raw), digest);
}

#[test]
fn credential_helper_protocol() {
    require_root();
    let reg = Registry::start(Auth::Token);
    let host = reg.host();
    let r = TestRoot::new();
    // A docker-credential-* helper that keeps its secrets in one file and logs calls.
    let bin = r.path("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store = r.path("helper-store.json");
    let log = r.path("helper.log");
    let script = format!(
        "#!/bin/sh\nin=$(cat)\necho \"$1 $in\" >> {log}\ncase \"$1\" in\n  store) printf '%s' \"$in\" > {store} ;;\n  get) if [ -s {store} ]; then cat {store}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) rm -f {store} ;;\nesac\n",
        log = log.display(),
        store = store.display()
    );
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(r.path("docker-config")).unwrap();
    std::fs::write(
        r.path("docker-config/config.json"),
        serde_json::json!({"credHelpers": {host.clone(): "berthtest"}, "psFormat": "keep-me"})
            .to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut child = berth_cmd(&r)
        .env("PATH", &path)
        .args(["login", "--username", USER, "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The secret went to the helper, not into config.json.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    assert_eq!(stored["ServerURL"], host.as_str());
    let cfg_text = std::fs::read_to_string(r.path("docker-config/config.json")).unwrap();
    assert!(!cfg_text.contains(PASSWORD), "{cfg_text}");
    assert!(cfg_text.contains("keep-me"), "other keys kept: {cfg_text}");

    // Pushing uses the helper's `get`.
    let work = TestRoot::new();
    let layout = seed_image(&work, "helper");
    layout.push_with_skopeo(
        "t",
        &format!("{host}/h/app:t"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    run_ok(
        berth_cmd(&r)
            .env("PATH", &path)
            .args(["pull", &format!("{host}/h/app:t")]),
    );
    run_ok(berth_cmd(&r).env("PATH", &path).args([
        "tag",
        &format!("{host}/h/app:t"),
        &format!("{host}/h/other:t"),
    ]));
    run_ok(
        berth_cmd(&r)
            .env("PATH", &path)
            .args(["push", &format!("{host}/h/other:t")]),
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("get ") && l.contains(&host)),
        "{calls}"
    );

    // Logout erases it from the helper.
    run_ok(berth_cmd(&r).env("PATH", &path).args(["logout", &host]));
    assert!(!store.exists());
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .any(|l| l.starts_with("erase ")));
}

#[test]
fn identity_token_uses_the_oauth2_post_flow() {
    require_root();
    let reg = Registry::start(Auth::Token);
    let ts = reg.token_server.as_ref().expect("token server");
    let host = reg.host();
    let work = TestRoot::new();
    let layout = seed_image(&work, "oauth");
    layout.push_with_skopeo(
        "t",
        &format!("{host}/o/app:t"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    let r = TestRoot::new();
    std::fs::create_dir_all(r.path("docker-config")).unwrap();
    std::fs::write(
        r.path("docker-config/config.json"),
        serde_json::json!({"auths": {host.clone(): {"identitytoken": "berth-refresh-token"}}})
            .to_string(),
    )
    .unwrap();
    let before = ts.count();
    run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &format!("{host}/o/app:t")]));
    run_ok(berth_cmd(&r).args([
        "tag",
        &format!("{host}/o/app:t"),
        &format!("{host}/o/pushed:t"),
    ]));
    run_ok(berth_cmd(&r).args(["push", &format!("{host}/o/pushed:t")]));
    let reqs = ts.requests.lock().unwrap()[before..].to_vec();
    assert!(
        !reqs.is_empty() && reqs.iter().all(|q| q.method == "POST"),
        "{reqs:?}"
    );
}

#[test]
fn token_server_outage_is_retried() {
    require_root();
    let reg = Registry::start(Auth::Token);
    let ts = reg.token_server.as_ref().expect("token server");
    let host = reg.host();
    let work = TestRoot::new();
    let layout = seed_image(&work, "outage");
    layout.push_with_skopeo(
        "t",
        &format!("{host}/out/app:t"),
        &["--dest-creds", &format!("{USER}:{PASSWORD}")],
    );
    *ts.fail_next.lock().unwrap() = 2;
    let before = ts.count();
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &format!("{host}/out/app:t")]));
    assert_eq!(*ts.fail_next.lock().unwrap(), 0, "both failures were hit");
    assert!(
        ts.count() - before >= 3,
        "two failed token requests, then one that worked"
    );
    // A lasting outage fails with the token server named.
    *ts.fail_next.lock().unwrap() = 1000;
    let r = TestRoot::new();
    let err =
        run_fail(berth_cmd(&r).args(["pull", "--retries", "1", &format!("{host}/out/app:t")]));
    assert!(err.contains("token server") && err.contains("503"), "{err}");
}

#[test]
fn login_prompts_on_a_terminal() {
    require_root();
    berth_tests::require_command("script", "bsdutils");
    let reg = Registry::start(Auth::BasicTls);
    let host = reg.host();
    let r = TestRoot::new();
    let cmd = format!(
        "{} login --certs-dir {} {host}",
        berth_tests::bin("berth").display(),
        reg.certs_dir().display()
    );
    // script runs berth on a pty and feeds it our stdin.
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_CONFIG", r.path("docker-config"))
        .env("BERTH_REGISTRY_CONFIG", r.path("no-daemon.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{USER}\n").as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Username: ") && text.contains("Password: "),
        "{text}"
    );
    assert!(text.contains("Login Succeeded"), "{text}");
    let cfg = docker_config(&r);
    assert!(cfg["auths"][host.as_str()]["auth"].is_string(), "{cfg}");
}
