//! Runs the real `natterd` binary.

use natter_server::config::Config;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_natterd");

/// A temp dir holding `natterd.toml` whose `data_dir` is `<tmp>/data`.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("natterd.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[listen]\nc2s = \"127.0.0.1:0\"\nc2s_tls = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n[c2s]\nrequire_tls = false\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    Setup { dir, config }
}

fn natterd(config: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {o:?}\nstderr: {}", stderr(o));
    stdout(o)
}

#[track_caller]
fn fails(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(o).contains(needle),
        "stderr lacks {needle:?}: {}",
        stderr(o)
    );
}

#[test]
fn config_example_is_the_default() {
    let out = natterd(None, &["config", "example"], None);
    let text = ok(&out);
    assert_eq!(Config::parse(&text).unwrap(), Config::default());
}

#[test]
fn config_check() {
    let s = setup();
    assert_eq!(
        ok(&natterd(Some(&s.config), &["config", "check"], None)).trim(),
        "ok"
    );
    // The flag also works after the subcommand.
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert_eq!(ok(&out).trim(), "ok");
}

#[test]
fn unknown_config_key_is_named() {
    let s = setup();
    let bad = s.dir.path().join("bad.toml");
    std::fs::write(&bad, "[c2s]\nrequire_tsl = false\n").unwrap();
    let out = natterd(Some(&bad), &["config", "check"], None);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("require_tsl"), "{}", stderr(&out));
    // Every command that needs the config refuses it too.
    let out = natterd(Some(&bad), &["user", "list"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("require_tsl"), "{}", stderr(&out));
}

#[test]
fn user_round_trip() {
    let s = setup();
    let c = Some(s.config.as_path());
    ok(&natterd(
        c,
        &["user", "add", "Alice", "--password", "secret"],
        None,
    ));
    ok(&natterd(
        c,
        &["user", "add", "bob@localhost", "--password", "pw"],
        None,
    ));
    assert_eq!(
        ok(&natterd(c, &["user", "list"], None)),
        "alice@localhost\nbob@localhost\n"
    );
    fails(
        &natterd(c, &["user", "add", "alice", "--password", "x"], None),
        "alice@localhost already exists",
    );
    fails(
        &natterd(
            c,
            &["user", "add", "carol@example.org", "--password", "x"],
            None,
        ),
        "localhost",
    );
    fails(
        &natterd(c, &["user", "add", "carol", "--password", ""], None),
        "empty password",
    );
    ok(&natterd(
        c,
        &["user", "passwd", "alice", "--password", "new"],
        None,
    ));
    fails(
        &natterd(c, &["user", "passwd", "nobody", "--password", "x"], None),
        "nobody@localhost does not exist",
    );
    ok(&natterd(c, &["user", "del", "alice@localhost"], None));
    fails(
        &natterd(c, &["user", "del", "alice"], None),
        "alice@localhost does not exist",
    );
    assert_eq!(ok(&natterd(c, &["user", "list"], None)), "bob@localhost\n");
}

#[test]
fn import_from_stdin() {
    let s = setup();
    let c = Some(s.config.as_path());
    ok(&natterd(
        c,
        &["user", "add", "u0", "--password", "pw"],
        None,
    ));
    let mut input = String::from("# accounts for the load test\n\n");
    for i in 0..2000 {
        input.push_str(&format!("u{i} password {i}\n"));
    }
    input.push_str("u1999@localhost duplicate\n");
    let start = Instant::now();
    let out = natterd(c, &["user", "import"], Some(input.as_bytes()));
    let elapsed = start.elapsed();
    println!("imported 2,000 lines in {elapsed:.2?}");
    assert_eq!(ok(&out).trim(), "imported 1999, skipped 2 existing");
    let list = ok(&natterd(c, &["user", "list"], None));
    let mut expected: Vec<String> = (0..2000).map(|i| format!("u{i}@localhost")).collect();
    expected.sort();
    assert_eq!(list.lines().collect::<Vec<_>>(), expected);

    // Bad lines are reported by number, good ones still imported, exit 1.
    let out = natterd(
        c,
        &["user", "import"],
        Some(b"new1 pw\nnopassword\nx@example.org pw\nnew2 pw\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).trim(), "imported 2, skipped 0 existing");
    let err = stderr(&out);
    assert!(err.contains("line 2:") && err.contains("line 3:"), "{err}");
}

#[test]
fn run_and_stop_on_sigterm() {
    let s = setup();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&s.config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("natterd serving") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        panic!("no \"natterd serving\" log line within 20 s");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("natterd did not exit within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
