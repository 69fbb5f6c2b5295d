//! Fixtures for the registry tests: a real `docker-registry` (distribution 2.8)
//! on a free loopback port in three setups (plain HTTP, htpasswd Basic over TLS,
//! token auth), a token server implementing Docker's token spec, a proxy that
//! injects faults, and OCI layouts built in memory to push with skopeo.
//!
//! Every fixture kills its processes and removes its files on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::{require_command, run_ok};

/// The user and password every authenticated fixture accepts.
pub const USER: &str = "berthuser";
/// The password for [`USER`].
pub const PASSWORD: &str = "s3cret-pass";
/// The `service` the token-auth registry names in its challenge.
pub const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-issuer";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 20 s");
}

/// How a fixture registry authenticates.
pub enum Auth {
    /// No authentication, plain HTTP.
    None,
    /// htpasswd Basic authentication over TLS with a certificate signed by a test CA.
    BasicTls,
    /// Token authentication through a [`TokenServer`], plain HTTP.
    Token,
}

/// A running `docker-registry serve` on loopback.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    /// The token server, for [`Auth::Token`].
    pub token_server: Option<TokenServer>,
}

impl Registry {
    /// Starts a registry with the given authentication.
    pub fn start(auth: Auth) -> Registry {
        let bin = require_command("docker-registry", "docker-registry");
        require_command("openssl", "openssl");
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("create registry dir");
        let port = free_port();
        let mut http = format!("  addr: 127.0.0.1:{port}\n");
        let mut auth_section = String::new();
        let mut token_server = None;
        match auth {
            Auth::None => {}
            Auth::BasicTls => {
                require_command("htpasswd", "apache2-utils");
                let tls = TlsFiles::generate(&dir.path().join("tls"));
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    tls.cert.display(),
                    tls.key.display()
                ));
                let htpasswd = dir.path().join("htpasswd");
                let out = run_ok(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
                auth_section = format!(
                    "auth:\n  htpasswd:\n    realm: berth-basic-realm\n    path: {}\n",
                    htpasswd.display()
                );
                // Docker's layout: certs.d/<host:port>/ca.crt.
                let certs = dir.path().join("certs.d").join(format!("127.0.0.1:{port}"));
                std::fs::create_dir_all(&certs).expect("create certs.d");
                std::fs::copy(&tls.ca, certs.join("ca.crt")).expect("copy CA");
            }
            Auth::Token => {
                let ts = TokenServer::start(&dir.path().join("token"));
                auth_section = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    ts.realm(),
                    ts.cert.display()
                );
                token_server = Some(ts);
            }
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n{http}{auth_section}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        wait_for_port(port, &mut child, "docker-registry");
        Registry {
            child,
            dir,
            port,
            token_server,
        }
    }

    /// The registry's `host:port`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certs.d directory holding this registry's CA (for [`Auth::BasicTls`]).
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// The CA certificate file (for [`Auth::BasicTls`]).
    pub fn ca_file(&self) -> PathBuf {
        self.certs_dir().join(self.host()).join("ca.crt")
    }

    /// The registry's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA, and a server certificate for 127.0.0.1/localhost it signed.
pub struct TlsFiles {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Generates the CA and the server certificate with the openssl CLI.
    pub fn generate(dir: &Path) -> TlsFiles {
        std::fs::create_dir_all(dir).expect("create tls dir");
        let p = |n: &str| dir.join(n);
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=berth test CA",
                ])
                .arg("-keyout")
                .arg(p("ca.key"))
                .arg("-out")
                .arg(p("ca.crt")),
        );
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .arg("-keyout")
                .arg(p("server.key"))
                .arg("-out")
                .arg(p("server.csr")),
        );
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext file");
        run_ok(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
                .arg("-in")
                .arg(p("server.csr"))
                .arg("-CA")
                .arg(p("ca.crt"))
                .arg("-CAkey")
                .arg(p("ca.key"))
                .arg("-extfile")
                .arg(p("ext.cnf"))
                .arg("-out")
                .arg(p("server.crt")),
        );
        TlsFiles {
            ca: p("ca.crt"),
            cert: p("server.crt"),
            key: p("server.key"),
        }
    }
}

/// One HTTP/1.1 request as the fixtures' tiny servers see it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: String,
    /// The path with its query.
    pub target: String,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if stream.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        target,
        headers,
        body,
    })
}

fn write_response(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn query_params(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_params(query)
}

fn form_params(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server running on its own thread until dropped.
struct ServerThread {
    stop: Arc<AtomicBool>,
    port: u16,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn spawn(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> ServerThread {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fixture server");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let h = handler.clone();
                    std::thread::spawn(move || h(conn));
                }
            }
        });
        ServerThread {
            stop,
            port,
            handle: Some(handle),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What the token server was asked, for assertions.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The account that authenticated, if any.
    pub account: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
}

/// A token server implementing Docker's token spec: GET with Basic (or
/// anonymous) and POST with a refresh token, replying with an RS256 JWT whose
/// `x5c` header carries the signing certificate the registry trusts.
pub struct TokenServer {
    _server: ServerThread,
    port: u16,
    /// The certificate the registry is told to trust (`rootcertbundle`).
    pub cert: PathBuf,
    /// Every request seen.
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// `expires_in` sent with each token.
    pub expires_in: Arc<Mutex<u64>>,
    /// How many of the next requests get a 503 (a token server outage).
    pub fail_next: Arc<Mutex<usize>>,
}

impl TokenServer {
    /// Generates a signing key and certificate under `dir` and starts serving.
    pub fn start(dir: &Path) -> TokenServer {
        std::fs::create_dir_all(dir).expect("create token dir");
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=berth token signer",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        let der = run_ok(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
        )
        .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let key_pem = std::fs::read(&key).expect("read token key");
        let encoding =
            jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem).expect("token key is RSA PEM");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expires_in = Arc::new(Mutex::new(300u64));
        let fail_next = Arc::new(Mutex::new(0usize));
        let (reqs, exp, fail) = (requests.clone(), expires_in.clone(), fail_next.clone());
        let server = ServerThread::spawn(move |conn| {
            let mut w = conn.try_clone().expect("clone conn");
            let mut r = BufReader::new(conn);
            let Some(req) = read_request(&mut r) else {
                return;
            };
            let (account, params, ok) = token_request_identity(&req);
            let scopes: Vec<String> = params
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect();
            reqs.lock().unwrap().push(TokenRequest {
                method: req.method.clone(),
                account: account.clone(),
                scopes: scopes.clone(),
            });
            {
                let mut f = fail.lock().unwrap();
                if *f > 0 {
                    *f -= 1;
                    write_response(&mut w, "503 Service Unavailable", &[], b"outage");
                    return;
                }
            }
            if !ok {
                write_response(
                    &mut w,
                    "401 Unauthorized",
                    &[],
                    b"{\"details\":\"bad credentials\"}",
                );
                return;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let expires = *exp.lock().unwrap();
            let access: Vec<serde_json::Value> = scopes
                .iter()
                .filter_map(|s| {
                    let mut it = s.splitn(3, ':');
                    let (t, name, actions) = (it.next()?, it.next()?, it.next()?);
                    let mut actions: Vec<&str> = actions.split(',').collect();
                    if account.is_none() {
                        actions.retain(|a| *a == "pull");
                    }
                    Some(serde_json::json!({"type": t, "name": name, "actions": actions}))
                })
                .collect();
            let claims = serde_json::json!({
                "iss": TOKEN_ISSUER,
                "sub": account.clone().unwrap_or_default(),
                "aud": TOKEN_SERVICE,
                "exp": now + expires,
                "nbf": now - 10,
                "iat": now,
                "jti": format!("{now}-{}", reqs.lock().unwrap().len()),
                "access": access,
            });
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.x5c = Some(vec![x5c.clone()]);
            let jwt = jsonwebtoken::encode(&header, &claims, &encoding).expect("sign token");
            let body = serde_json::json!({
                "token": jwt,
                "access_token": jwt,
                "expires_in": expires,
                "issued_at": "2026-01-01T00:00:00Z",
                "refresh_token": "berth-refresh-token",
            });
            write_response(
                &mut w,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                body.to_string().as_bytes(),
            );
        });
        let port = server.port;
        TokenServer {
            _server: server,
            port,
            cert,
            requests,
            expires_in,
            fail_next,
        }
    }

    /// The token endpoint URL (the challenge's realm).
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// How many token requests were served.
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Who is asking and with what parameters; `ok` is false for wrong credentials.
fn token_request_identity(req: &HttpRequest) -> (Option<String>, Vec<(String, String)>, bool) {
    if req.method == "POST" {
        let params = form_params(&String::from_utf8_lossy(&req.body));
        let refresh = params
            .iter()
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.clone());
        let password = params
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone());
        let ok = refresh.as_deref() == Some("berth-refresh-token")
            || password.as_deref() == Some(PASSWORD);
        return (Some(USER.to_string()), params, ok);
    }
    let params = query_params(&req.target);
    match req.headers.get("authorization") {
        None => (None, params, true),
        Some(h) => {
            let decoded = h
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let ok = decoded == format!("{USER}:{PASSWORD}");
            (Some(USER.to_string()), params, ok)
        }
    }
}

/// A fault the proxy injects into matching requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (e.g. 500, 429) without asking the registry.
    Status(u16),
    /// Answer with this status and `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Answer 401 with the registry's own Bearer challenge, as for an expired token.
    Unauthorized,
    /// Forward, but close the connection after this many body bytes.
    DropAfter(usize),
    /// Forward with one body byte changed.
    Corrupt,
    /// Answer 307 to the same path and query at this base URL (blob storage elsewhere).
    Redirect(String),
    /// Forward, but trickle the body out evenly over this long (a slow link).
    Throttle(Duration),
    /// Read the request and answer nothing, holding the connection for up to 60 s.
    Hang,
    /// Forward, but send the body one byte every 100 ms (for up to 60 s): slowloris.
    Trickle,
    /// Answer 200 with a chunked body of spaces that never ends (sent for up to 60 s).
    Endless,
}

/// How long a [`Fault::Hang`], [`Fault::Trickle`] or [`Fault::Endless`] connection is held at most.
const HOLD: Duration = Duration::from_secs(60);

/// Sleeps for up to `HOLD`, returning early once the peer has closed the connection.
fn hold(conn: &TcpStream) {
    let start = Instant::now();
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 512];
    let mut c = conn;
    while start.elapsed() < HOLD {
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// A rule: requests whose method is `method` and path contains `path_contains`
/// get `fault`, `times` times.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The HTTP method to match.
    pub method: String,
    /// A substring of the request path.
    pub path_contains: String,
    /// What to do.
    pub fault: Fault,
    /// How many more requests to affect.
    pub times: usize,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct ProxiedRequest {
    /// The method.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// When the request arrived.
    pub at: Instant,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

/// An HTTP proxy in front of a plain-HTTP registry that injects faults.
pub struct FaultProxy {
    _server: ServerThread,
    port: u16,
    rules: Arc<Mutex<Vec<FaultRule>>>,
    /// Every request seen, in order.
    pub seen: Arc<Mutex<Vec<ProxiedRequest>>>,
}

impl FaultProxy {
    /// Proxies `127.0.0.1:<new port>` to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.to_string();
        let rules: Arc<Mutex<Vec<FaultRule>>> = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (rules2, seen2) = (rules.clone(), seen.clone());
        let server = ServerThread::spawn(move |conn| {
            let mut client = conn.try_clone().expect("clone conn");
            let mut r = BufReader::new(conn);
            let Some(req) = read_request(&mut r) else {
                return;
            };
            let path = req.target.split('?').next().unwrap_or("").to_string();
            let fault = {
                let mut rules = rules2.lock().unwrap();
                rules
                    .iter_mut()
                    .find(|rule| {
                        rule.times > 0
                            && rule.method == req.method
                            && path.contains(&rule.path_contains)
                    })
                    .map(|rule| {
                        rule.times -= 1;
                        rule.fault.clone()
                    })
            };
            seen2.lock().unwrap().push(ProxiedRequest {
                method: req.method.clone(),
                target: req.target.clone(),
                range: req.headers.get("range").cloned(),
                authorization: req.headers.get("authorization").cloned(),
                at: Instant::now(),
                fault: fault.clone(),
            });
            match fault {
                Some(Fault::Status(code)) => {
                    write_response(
                        &mut client,
                        &format!("{code} Injected"),
                        &[("Retry-After", "0".into())],
                        b"{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"injected fault\"}]}",
                    );
                    return;
                }
                Some(Fault::RetryAfter(code, secs)) => {
                    write_response(
                        &mut client,
                        &format!("{code} Injected"),
                        &[("Retry-After", secs.to_string())],
                        b"{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}",
                    );
                    return;
                }
                Some(Fault::Redirect(base)) => {
                    write_response(
                        &mut client,
                        "307 Temporary Redirect",
                        &[("Location", format!("{base}{}", req.target))],
                        b"",
                    );
                    return;
                }
                Some(Fault::Hang) => {
                    hold(&client);
                    return;
                }
                Some(Fault::Endless) => {
                    let _ = client.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    );
                    let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
                    let start = Instant::now();
                    while start.elapsed() < HOLD && client.write_all(chunk.as_bytes()).is_ok() {}
                    return;
                }
                Some(Fault::Unauthorized) => {
                    // Ask upstream without credentials to get its real challenge.
                    let mut anon = req.clone();
                    anon.headers.remove("authorization");
                    let raw = forward(&upstream, &anon);
                    let (head, _) = split_response(&raw);
                    let challenge = head
                        .lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
                                .map(|(_, v)| v.trim().to_string())
                        })
                        .unwrap_or_default();
                    write_response(
                        &mut client,
                        "401 Unauthorized",
                        &[
                            ("WWW-Authenticate", challenge),
                            ("Content-Type", "application/json".into()),
                        ],
                        b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"token expired\"}]}",
                    );
                    return;
                }
                _ => {}
            }
            let raw = forward(&upstream, &req);
            let (head, body_start) = split_response(&raw);
            let _ = head;
            match fault {
                Some(Fault::DropAfter(n)) => {
                    let end = (body_start + n).min(raw.len());
                    let _ = client.write_all(&raw[..end]);
                    let _ = client.flush();
                    let _ = client.shutdown(Shutdown::Both);
                }
                Some(Fault::Throttle(over)) => {
                    const STEPS: u32 = 100;
                    let body = &raw[body_start.min(raw.len())..];
                    let chunk = body.len().div_ceil(STEPS as usize).max(1);
                    if client.write_all(&raw[..body_start]).is_err() {
                        return;
                    }
                    for part in body.chunks(chunk) {
                        std::thread::sleep(over / STEPS);
                        if client
                            .write_all(part)
                            .and_then(|()| client.flush())
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                Some(Fault::Trickle) => {
                    let _ = client.write_all(&raw[..body_start]);
                    let start = Instant::now();
                    for byte in &raw[body_start..] {
                        if start.elapsed() > HOLD || client.write_all(&[*byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                Some(Fault::Corrupt) => {
                    let mut raw = raw;
                    if raw.len() > body_start {
                        let i = body_start + (raw.len() - body_start) / 2;
                        raw[i] ^= 0xff;
                    }
                    let _ = client.write_all(&raw);
                }
                _ => {
                    let _ = client.write_all(&raw);
                }
            }
        });
        let port = server.port;
        FaultProxy {
            _server: server,
            port,
            rules,
            seen,
        }
    }

    /// The proxy's `host:port`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a fault rule.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(FaultRule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            fault,
            times,
        });
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<ProxiedRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// Sends `req` to `upstream` with `Connection: close` and returns the raw response.
fn forward(upstream: &str, req: &HttpRequest) -> Vec<u8> {
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec();
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k == "connection" || k == "content-length" || k == "transfer-encoding" {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(&req.body);
    let mut raw = Vec::new();
    let _ = up.read_to_end(&mut raw);
    raw
}

fn split_response(raw: &[u8]) -> (String, usize) {
    let pos = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(raw.len());
    (String::from_utf8_lossy(&raw[..pos]).into_owned(), pos)
}

/// A blob of an OCI layout: its digest, size and media type.
#[derive(Debug, Clone)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type it is referenced with.
    pub media_type: String,
}

/// Builds OCI image layouts on disk to push with skopeo.
pub struct OciLayout {
    dir: PathBuf,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A tar archive with the given `(path, contents)` regular files.
pub fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, &data[..])
            .expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip finish")
}

impl OciLayout {
    /// An empty layout at `dir`.
    pub fn new(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
        }
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a blob and returns its descriptor.
    pub fn blob(&self, bytes: &[u8], media_type: &str) -> Blob {
        let digest = sha256_digest(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&digest[7..]), bytes)
            .expect("write blob");
        Blob {
            digest,
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
        }
    }

    /// An image manifest for `layer_tars` (gzipped here) on `os/arch`.
    pub fn image(&self, layer_tars: &[Vec<u8>], os: &str, arch: &str) -> Blob {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in layer_tars {
            diff_ids.push(sha256_digest(tar));
            layers.push(self.blob(&gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"));
        }
        let config = serde_json::json!({
            "architecture": arch,
            "os": os,
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        });
        let config = self.blob(
            config.to_string().as_bytes(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc_json(&config),
            "layers": layers.iter().map(desc_json).collect::<Vec<_>>(),
        });
        self.blob(
            manifest.to_string().as_bytes(),
            "application/vnd.oci.image.manifest.v1+json",
        )
    }

    /// An index of `(manifest, os, arch)` entries plus, if `attestation` is set,
    /// a BuildKit-style attestation manifest for the first entry.
    pub fn index(&self, entries: &[(Blob, &str, &str)], attestation: bool) -> Blob {
        let mut manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(b, os, arch)| {
                let mut d = desc_json(b);
                d["platform"] = serde_json::json!({"os": os, "architecture": arch});
                d
            })
            .collect();
        if attestation {
            let statement = self.blob(
                b"{\"_type\":\"https://in-toto.io/Statement/v0.1\"}",
                "application/vnd.in-toto+json",
            );
            let cfg = self.blob(b"{}", "application/vnd.oci.image.config.v1+json");
            let m = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": desc_json(&cfg),
                "layers": [desc_json(&statement)],
            });
            let m = self.blob(
                m.to_string().as_bytes(),
                "application/vnd.oci.image.manifest.v1+json",
            );
            let mut d = desc_json(&m);
            d["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
            d["annotations"] = serde_json::json!({
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": entries[0].0.digest,
            });
            manifests.insert(0, d);
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.blob(
            index.to_string().as_bytes(),
            "application/vnd.oci.image.index.v1+json",
        )
    }

    /// Names `top` as `tag` in the layout's `index.json`.
    pub fn tag(&self, top: &Blob, tag: &str) {
        let mut d = desc_json(top);
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [d]});
        std::fs::write(self.dir.join("index.json"), index.to_string()).expect("write index.json");
    }

    /// Pushes the layout's `tag` to `docker://<dest>` with skopeo (`--all` for indexes).
    pub fn push_with_skopeo(&self, tag: &str, dest: &str, extra: &[&str]) {
        require_command("skopeo", "skopeo");
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--all", "--dest-tls-verify=false"])
                .args(extra)
                .arg(format!("oci:{}:{tag}", self.dir.display()))
                .arg(format!("docker://{dest}")),
        );
    }
}

fn desc_json(b: &Blob) -> serde_json::Value {
    serde_json::json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size})
}

/// `skopeo inspect --raw` of `docker://<image>` over plain HTTP, as bytes.
pub fn skopeo_raw(image: &str, extra: &[&str]) -> Vec<u8> {
    run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .args(extra)
            .arg(format!("docker://{image}")),
    )
    .stdout
}

/// A `berth` command for `root` with its own Docker config dir, no registry
/// config file and an empty certs.d, so nothing from the host leaks in.
pub fn berth_cmd(root: &crate::TestRoot) -> Command {
    let mut cmd = root.berth();
    cmd.env("DOCKER_CONFIG", root.path("docker-config"))
        .env("BERTH_REGISTRY_CONFIG", root.path("no-daemon.json"))
        .env("BERTH_CERTS_DIR", root.path("certs.d"))
        .env_remove("BERTH_MAX_CONCURRENT");
    cmd
}

/// Runs a command expected to fail and returns its stderr.
pub fn run_fail(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should have failed\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `Digest: ` line `berth pull` prints.
pub fn printed_digest(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Digest: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no Digest line in {}", String::from_utf8_lossy(stdout)))
}

/// Incompressible bytes (a simple xorshift stream) for layers that must stay large after gzip.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The files under a store's `blobs/sha256`.
pub fn stored_blobs(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("blobs/sha256"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers
/// (each is held for up to a minute): a registry that hangs, or a peer that
/// never finishes a TLS handshake.
pub struct SilentServer {
    _server: ServerThread,
    port: u16,
}

impl SilentServer {
    /// Starts the server on a free port.
    pub fn start() -> SilentServer {
        let server = ServerThread::spawn(|conn| hold(&conn));
        let port = server.port;
        SilentServer {
            _server: server,
            port,
        }
    }

    /// Its `host:port`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// `cmd` run under `prlimit --as=<bytes>`: same program, arguments and environment.
pub fn with_address_space_limit(cmd: &Command, bytes: u64) -> Command {
    under_prlimit(cmd, &format!("--as={bytes}"))
}

/// `cmd` run under `prlimit <limit>` (e.g. `--nofile=256:256`): same program, arguments
/// and environment.
pub fn under_prlimit(cmd: &Command, limit: &str) -> Command {
    let mut limited = Command::new("prlimit");
    limited
        .arg(limit)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    limited
}

/// Runs `cmd`, killing it after `limit`; returns its output and how long it ran.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    while start.elapsed() < limit {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait for command");
    (out, start.elapsed())
}
