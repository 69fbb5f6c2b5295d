//! The control channel of a running container: a unix socket, `/run/berth/<id>/control.sock`,
//! served by its monitor. A client sends one JSON request line and gets one JSON reply line;
//! after an `attach` reply the connection carries the container's streams: raw terminal bytes
//! when it has a tty, otherwise Docker's multiplexed frames (`[stream, 0, 0, 0, len u32 BE]`
//! then `len` bytes; stream 1 is stdout, 2 stderr), and the client's bytes go to its stdin
//! (a half-close of the client's side closes the container's stdin). An `exec` request is
//! answered only once its command has ended, with its [`ExecOutcome`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::logs::Stream;

/// Where berth keeps per-container sockets (`<dir>/<id>/`).
pub const RUN_DIR: &str = "/run/berth";

/// How long a client waits for the monitor to answer a request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors talking to a container's monitor.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket (the monitor is gone).
    #[error("container {id}: no monitor answers on {path}: {source}")]
    Unreachable {
        /// The container id.
        id: String,
        /// The socket.
        path: PathBuf,
        /// Why the connection failed.
        #[source]
        source: std::io::Error,
    },
    /// The monitor refused the request.
    #[error("container {id}: {message}")]
    Refused {
        /// The container id.
        id: String,
        /// What the monitor said.
        message: String,
    },
    /// The conversation broke off.
    #[error("container {id}: control socket: {source}")]
    Io {
        /// The container id.
        id: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What a client asks the monitor for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    /// Stream the container's output, and with `stdin` pass the client's bytes on.
    Attach {
        /// Whether the client's bytes go to the container's stdin.
        stdin: bool,
    },
    /// Set the container's terminal size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Stop it (the restart policy no longer applies): `signal`, then SIGKILL after
    /// `timeout_secs`.
    Stop {
        /// The signal number to send first.
        signal: i32,
        /// Seconds before SIGKILL.
        timeout_secs: u64,
    },
    /// Send it a signal (SIGKILL or its stop signal also ends the restart policy, as Docker).
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// Run `argv` in the container (its process settings, no terminal, output captured up
    /// to the health check's limit) and reply once it ended, or was killed after
    /// `timeout_ms`.
    Exec {
        /// The command and its arguments (not run through a shell).
        argv: Vec<String>,
        /// Milliseconds before it is killed.
        timeout_ms: u64,
    },
}

/// How an `exec` request's command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecOutcome {
    /// It exited (128+n when killed by signal n).
    Exited {
        /// Its exit code.
        code: i32,
        /// What it wrote to stdout and stderr, the first `MAX_OUTPUT` bytes.
        output: String,
    },
    /// It ran past its timeout and was killed.
    TimedOut,
}

/// The monitor's answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Why the request was refused; `None` when it was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `attach`: whether the stream is a terminal's raw bytes.
    #[serde(default)]
    pub tty: bool,
    /// For `exec`: how its command ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecOutcome>,
}

/// The per-container directory of sockets (`/run/berth/<id>`).
pub fn socket_dir(id: &str) -> PathBuf {
    Path::new(RUN_DIR).join(id)
}

/// The control socket of container `id`.
pub fn socket_path(id: &str) -> PathBuf {
    socket_dir(id).join("control.sock")
}

/// Removes container `id`'s socket directory (when the container is removed).
pub fn remove_socket_dir(id: &str) {
    let dir = socket_dir(id);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot remove");
        }
    }
}

/// Sends `request` to container `id`'s monitor and returns the connection after a positive
/// reply, with the reply.
pub fn request(id: &str, request: &Request) -> Result<(UnixStream, Reply), ControlError> {
    request_within(id, request, REPLY_TIMEOUT)
}

/// [`request`], waiting up to `wait` for the reply (an `exec` is answered when it ended).
pub fn request_within(
    id: &str,
    request: &Request,
    wait: Duration,
) -> Result<(UnixStream, Reply), ControlError> {
    let path = socket_path(id);
    let mut conn = UnixStream::connect(&path).map_err(|source| ControlError::Unreachable {
        id: id.to_string(),
        path: path.clone(),
        source,
    })?;
    let io = |source| ControlError::Io {
        id: id.to_string(),
        source,
    };
    let mut line = serde_json::to_vec(request).map_err(|e| io(e.into()))?;
    line.push(b'\n');
    conn.write_all(&line).map_err(io)?;
    conn.set_read_timeout(Some(wait)).map_err(io)?;
    let reply: Reply = read_line(&mut conn)
        .map_err(io)
        .and_then(|l| serde_json::from_slice(&l).map_err(|e| io(e.into())))?;
    conn.set_read_timeout(None).map_err(io)?;
    match reply.error {
        Some(message) => Err(ControlError::Refused {
            id: id.to_string(),
            message,
        }),
        None => Ok((conn, reply)),
    }
}

/// Reads one line byte by byte, so nothing after it is consumed from the stream.
pub fn read_line(conn: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match conn.read(&mut byte)? {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before a full line",
                ))
            }
            _ if byte[0] == b'\n' => return Ok(line),
            _ if line.len() > 64 * 1024 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "request line too long",
                ))
            }
            _ => line.push(byte[0]),
        }
    }
}

/// One multiplexed frame for a non-tty attach.
pub fn frame(stream: Stream, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.push(match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Reads the next multiplexed frame; `None` at the end of the stream.
pub fn read_frame(reader: &mut impl BufRead) -> std::io::Result<Option<(Stream, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let stream = match header[0] {
        2 => Stream::Stderr,
        _ => Stream::Stdout,
    };
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut bytes = vec![0u8; len];
    reader.read_exact(&mut bytes)?;
    Ok(Some((stream, bytes)))
}

/// A reader of frames over `conn`.
pub fn frames(conn: UnixStream) -> BufReader<UnixStream> {
    BufReader::new(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut bytes = frame(Stream::Stdout, b"out");
        bytes.extend(frame(Stream::Stderr, b""));
        bytes.extend(frame(Stream::Stderr, b"err\n"));
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        let mut r = std::io::Cursor::new(bytes);
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Stream::Stdout, b"out".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((Stream::Stderr, vec![])));
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Stream::Stderr, b"err\n".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn requests_are_json_lines() {
        let r = Request::Stop {
            signal: 15,
            timeout_secs: 10,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"stop":{"signal":15,"timeout_secs":10}}"#);
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
        let r = Request::Exec {
            argv: vec!["cat".into(), "/tmp/ready".into()],
            timeout_ms: 1500,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"exec":{"argv":["cat","/tmp/ready"],"timeout_ms":1500}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    }

    #[test]
    fn exec_replies_carry_the_outcome() {
        let reply = Reply {
            error: None,
            tty: false,
            exec: Some(ExecOutcome::Exited {
                code: 1,
                output: "no\n".into(),
            }),
        };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            json,
            r#"{"tty":false,"exec":{"exited":{"code":1,"output":"no\n"}}}"#
        );
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
        let timed_out: Reply = serde_json::from_str(r#"{"exec":"timed_out"}"#).unwrap();
        assert_eq!(timed_out.exec, Some(ExecOutcome::TimedOut));
        // Replies of other requests carry none.
        let plain: Reply = serde_json::from_str(r#"{"tty":true}"#).unwrap();
        assert_eq!(plain.exec, None);
    }
}
