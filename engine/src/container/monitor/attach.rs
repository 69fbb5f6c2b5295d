//! Attached clients: the container's output goes to each (raw for a tty, else Docker's
//! multiplexed frames), and the input of those attached with stdin goes to the container.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::super::control;
use super::super::logs::Stream;

/// An attached client.
pub struct Client {
    /// Its connection (after the control reply).
    pub conn: UnixStream,
    /// Its bytes go to the container's stdin.
    pub stdin: bool,
    /// It has not closed its side yet.
    pub input_open: bool,
}

impl Client {
    /// A client just attached.
    pub fn new(conn: UnixStream, stdin: bool) -> Self {
        Client {
            conn,
            stdin,
            input_open: true,
        }
    }
}

/// Sends `bytes` the container wrote on `stream` to every client, dropping those that are
/// gone.
pub fn broadcast(clients: &mut Vec<Client>, stream: Stream, bytes: &[u8], tty: bool) {
    if clients.is_empty() {
        return;
    }
    let framed;
    let out: &[u8] = if tty {
        bytes
    } else {
        framed = control::frame(stream, bytes);
        &framed
    };
    clients.retain_mut(|client| client.conn.write_all(out).is_ok());
}

/// What reading a client's input found.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bytes for the container's stdin (when the client attached with stdin).
    Data(&'a [u8]),
    /// The client closed its side (it stays attached for output).
    Closed,
    /// Nothing to pass on now.
    Nothing,
    /// The connection broke: drop the client.
    Gone,
}

/// Reads what `client` sent into `buf`.
pub fn read_input<'a>(client: &mut Client, buf: &'a mut [u8]) -> Input<'a> {
    match client.conn.read(buf) {
        Ok(0) => {
            client.input_open = false;
            Input::Closed
        }
        Ok(n) if client.stdin => Input::Data(&buf[..n]),
        Ok(_) => Input::Nothing,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Input::Nothing,
        Err(_) => Input::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn output_is_framed_without_a_tty_and_raw_with_one() {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        let mut clients = vec![Client::new(a, false)];
        broadcast(&mut clients, Stream::Stderr, b"oops\n", false);
        let mut r = BufReader::new(b);
        assert_eq!(
            control::read_frame(&mut r).unwrap(),
            Some((Stream::Stderr, b"oops\n".to_vec()))
        );
        let mut tty_clients = vec![Client::new(c, false)];
        broadcast(&mut tty_clients, Stream::Stdout, b"raw", true);
        let mut got = [0u8; 3];
        let mut d = d;
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"raw");
    }

    #[test]
    fn a_gone_client_is_dropped() {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        drop(b);
        let mut clients = vec![Client::new(a, false), Client::new(c, false)];
        broadcast(&mut clients, Stream::Stdout, b"x", false);
        assert_eq!(clients.len(), 1);
    }

    #[test]
    fn input_passes_only_with_stdin_and_a_half_close_is_seen() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut with_stdin = Client::new(a, true);
        let mut buf = [0u8; 16];
        b.write_all(b"ls\n").unwrap();
        assert_eq!(read_input(&mut with_stdin, &mut buf), Input::Data(b"ls\n"));
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_input(&mut with_stdin, &mut buf), Input::Closed);
        assert!(!with_stdin.input_open);

        let (c, mut d) = UnixStream::pair().unwrap();
        let mut output_only = Client::new(c, false);
        d.write_all(b"ignored").unwrap();
        assert_eq!(read_input(&mut output_only, &mut buf), Input::Nothing);
    }
}
