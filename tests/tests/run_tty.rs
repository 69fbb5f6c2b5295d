//! The monitor's terminal and stdin, as root: `run -it` in the foreground (output, exit code,
//! a real pty), `run -i` with piped stdin, `run -dit` then `attach` (input, output, exit code,
//! window size, ctrl-p ctrl-q detaching and leaving it running), and tty output logged as
//! stdout. Terminals come from `script` (util-linux). Each test has its own store and private
//! network, and removes its containers (Drop guard).

mod run_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_tests::{bin, require_command, run_ok};
use run_support::{stderr, stdout, wait_until, Fixture};

/// Runs `command` (a shell command line) under a pty made by `script`, typing each chunk of
/// `input` half a second apart; `script -e` exits with the command's exit code.
fn in_terminal(f: &Fixture, command: &str, input: &[&[u8]]) -> Output {
    require_command("script", "bsdutils");
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", command, "/dev/null"]);
    // script's child gets our environment: point its berth at this test's store and network.
    for (k, v) in f.berth().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Typed once berth has put the terminal in raw mode (before that, the line discipline
    // would take ctrl-q as flow control).
    std::thread::sleep(Duration::from_millis(800));
    for chunk in input {
        stdin.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    // Left open a moment so script does not hang up before the container read its input.
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn berth_cmd() -> String {
    bin("berth").display().to_string()
}

#[test]
fn run_it_gives_a_terminal_and_its_exit_code() {
    let f = Fixture::new();
    let out = in_terminal(
        &f,
        &format!(
            "{} run --rm -it --network none busybox sh -c 'echo tty-$((6*7)); tty; exit 5'",
            berth_cmd()
        ),
        &[],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text} {}", stderr(&out));
    assert!(text.contains("tty-42"), "{text}");
    assert!(text.contains("/dev/pts/"), "not a terminal: {text}");
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
}

#[test]
fn run_i_passes_stdin_and_closes_it() {
    let f = Fixture::new();
    let mut child = f
        .berth()
        .args([
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
        ])
        .arg("while read x; do echo got-$x; done; echo eof; exit 4")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got-one\ngot-two\neof\n");
}

#[test]
fn detached_tty_attach_resize_and_detach_keys() {
    let mut f = Fixture::new();
    let name = f.name("tty-attach-1");
    let id = stdout(&run_ok(f.berth().args([
        "run",
        "-dit",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sh",
    ])))
    .trim()
    .to_string();
    assert!(f.ps(false).contains(&name));

    // ctrl-p ctrl-q: attach ends with 0 and the container keeps running.
    let out = in_terminal(
        &f,
        &format!("{} attach {name}", berth_cmd()),
        &[b"\x10\x11"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(300));
    let row = f.ps(false);
    assert!(row.contains(&name) && row.contains("Up"), "{row}");

    // The client's window size reaches the container's terminal.
    let out = in_terminal(
        &f,
        &format!("stty rows 33 cols 77; {} attach {name}", berth_cmd()),
        &[b"stty size\n", b"\x10\x11"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("33 77"), "{}", stdout(&out));

    // Input goes in, output comes back, and attach exits with the container's code.
    let out = in_terminal(
        &f,
        &format!("{} attach {name}", berth_cmd()),
        &[b"echo hi-$((6*7))\nexit 6\n"],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stdout(&out).contains("hi-42"), "{}", stdout(&out));
    wait_until("the exit", Duration::from_secs(10), || {
        f.ps(true).contains("Exited (6)")
    });
    // Terminal output is logged as stdout.
    let logs = run_ok(f.berth().args(["logs", &name]));
    assert!(stdout(&logs).contains("hi-42"), "{}", stdout(&logs));
    assert_eq!(stderr(&logs), "");
    let log = std::fs::read_to_string(f.containers_dir().join(&id).join(format!("{id}-json.log")))
        .unwrap();
    assert!(
        log.contains("hi-42") && !log.contains("\"stderr\""),
        "{log}"
    );
    // Stopped: attach refuses.
    let refused = f.berth().args(["attach", &name]).output().unwrap();
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("stopped"), "{}", stderr(&refused));
}
