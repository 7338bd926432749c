//! The natterd child process and the kill timings.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn natterd(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Starts natterd and waits for it to serve. Its warnings and errors are
/// echoed (prefixed with the generation), the rest of its log is dropped.
pub fn start(config: &Path, generation: usize) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("natterd serving") {
                let _ = tx.send(());
            }
            if line.contains("ERROR") || line.contains("WARN") || line.contains("panicked") {
                eprintln!("[natterd #{generation}] {line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("natterd serving within 30 s");
    child
}

/// The running natterd; killed by PID whenever the test ends, however it ends.
pub struct Natterd {
    pub config: PathBuf,
    pub child: Mutex<Option<Child>>,
    pub generation: AtomicU32,
}

impl Natterd {
    pub fn start(config: PathBuf) -> Natterd {
        let child = start(&config, 0);
        Natterd {
            config,
            child: Mutex::new(Some(child)),
            generation: AtomicU32::new(0),
        }
    }

    pub fn kill9(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    pub fn restart(&self) {
        let g = self.generation.fetch_add(1, Ordering::SeqCst) as usize + 1;
        let child = start(&self.config, g);
        let old = self.child.lock().unwrap().replace(child);
        assert!(old.is_none(), "restarted a running natterd");
    }

    /// SIGTERM; the exit status.
    pub fn terminate(&self) -> std::process::ExitStatus {
        let mut c = self.child.lock().unwrap().take().expect("natterd runs");
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("natterd did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Natterd {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(mut c) = guard.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// xorshift64*: the kill timings, reproducible from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------
