//! Unit tests of the transport's bounds against local servers that misbehave: one that
//! accepts and never answers, and one that trickles a body.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Request, Transport, TransportError};
use crate::endpoint::{Endpoint, RegistryOptions};

fn transport(port: u16) -> Transport {
    let options = RegistryOptions {
        timeout: Duration::from_millis(300),
        ..RegistryOptions::default()
    };
    let endpoint = Endpoint::new(&format!("127.0.0.1:{port}"), &options);
    Transport::new(endpoint, options, None).unwrap()
}

/// Serves each connection with `answer` (after reading the request head) on a free port.
async fn serve(answer: fn(u32) -> Vec<(Vec<u8>, Duration)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut conn, _)) = listener.accept().await {
            n += 1;
            let steps = answer(n);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = conn.read(&mut buf).await;
                for (bytes, pause) in steps {
                    if conn.write_all(&bytes).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn silent_registry_fails_within_the_timeout() {
    let port = serve(|_| Vec::new()).await;
    let t = transport(port);
    let start = Instant::now();
    let err = t.base().await.unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        err.contains(&format!("registry 127.0.0.1:{port}"))
            && err.contains("no response headers within 0.3s"),
        "{err}"
    );
}

#[tokio::test]
async fn trickling_body_fails_as_a_stall() {
    let port = serve(|n| {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec();
        if n == 1 {
            return vec![(ok, Duration::ZERO)];
        }
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
        let mut steps = vec![(head, Duration::from_millis(50))];
        steps.extend((0..100).map(|_| (b"x".to_vec(), Duration::from_millis(50))));
        steps
    })
    .await;
    let t = transport(port);
    let req = Request::new(Method::GET, "/v2/r/blobs/sha256:ab", "r", Vec::new());
    let reply = t.send(&req).await.unwrap();
    let start = Instant::now();
    let mut body = std::pin::pin!(t.body_stream(&req, reply, 100_000));
    let mut got = 0;
    let err = loop {
        match body.next().await {
            Some(Ok(chunk)) => got += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("body ended after {got} bytes"),
        }
    };
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("bytes in 0.3s (slower than 1024 bytes/s)"),
        "{err}"
    );
    assert!(body.next().await.is_none(), "a stalled body ends");
}

#[tokio::test]
async fn endless_body_is_cut_at_the_limit() {
    let port = serve(|n| {
        if n == 1 {
            return vec![(
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
                Duration::ZERO,
            )];
        }
        let mut steps = vec![(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
            Duration::ZERO,
        )];
        let chunk = format!("{:x}\r\n{}\r\n", 1 << 16, "a".repeat(1 << 16)).into_bytes();
        steps.extend((0..64).map(|_| (chunk.clone(), Duration::ZERO)));
        steps
    })
    .await;
    let t = transport(port);
    let req = Request::new(Method::GET, "/v2/r/manifests/t", "r", Vec::new());
    let reply = t.send(&req).await.unwrap();
    let err = t.read_limited(&req, reply, 1 << 20).await.unwrap_err();
    assert!(
        matches!(err, TransportError::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
}
