//! Account administration (`natterd user …`). Talks to the store directly;
//! SQLite in WAL mode makes that safe while a server has the database open.

use anyhow::{anyhow, bail, Context, Result};
use natter_sasl::StoredCredentials;
use natter_server::config::Config;
use natter_store::{Store, StoreConfig, StoreError};
use std::collections::HashSet;
use std::io::BufRead;

/// Accounts hashed and written per bulk transaction during import.
pub const IMPORT_CHUNK: usize = 10_000;

/// Opens the store the server would use (creating `data_dir` if needed).
pub async fn open_store(cfg: &Config) -> Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", cfg.data_dir.display()))?;
    let store = Store::open(StoreConfig {
        fsync: cfg.store.fsync,
        ..StoreConfig::sqlite(cfg.database_path())
    })
    .await
    .with_context(|| format!("opening the store {}", cfg.database_path().display()))?;
    Ok(store)
}

/// Turns `alice` or `alice@domain` into the normalised bare JID
/// `alice@domain`; refuses other domains, resources and JIDs without a
/// local part.
pub fn normalize_jid(input: &str, domain: &str) -> Result<String> {
    let input = input.trim();
    if input.is_empty() {
        bail!("empty JID");
    }
    let full = if input.contains('@') {
        input.to_owned()
    } else {
        format!("{input}@{domain}")
    };
    if full.contains('/') {
        bail!("`{input}` has a resource; give a bare JID (user or user@{domain})");
    }
    let jid = jid::BareJid::new(&full).map_err(|e| anyhow!("`{input}` is not a valid JID: {e}"))?;
    if jid.node().is_none() {
        bail!("`{input}` has no user part; give user or user@{domain}");
    }
    if jid.domain().as_str() != domain {
        bail!("`{input}` is not in this server's domain; the configured domain is {domain}");
    }
    Ok(jid.as_str().to_owned())
}

/// The stored form of a password (SCRAM keys for SHA-1 and SHA-256).
pub fn credentials(password: &str) -> Result<Vec<u8>> {
    if password.is_empty() {
        bail!("empty password");
    }
    let creds = StoredCredentials::new(password).map_err(|e| anyhow!("unusable password: {e}"))?;
    Ok(creds.to_bytes())
}

fn store_error(cmd: &str, jid: &str, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::AlreadyExists => anyhow!("{cmd}: {jid} already exists"),
        StoreError::NotFound => anyhow!("{cmd}: {jid} does not exist"),
        StoreError::Busy(_) => {
            anyhow!("{cmd}: the database stayed locked by another process; try again ({e})")
        }
        e => anyhow!("{cmd}: {jid}: {e}"),
    }
}

/// `user add`: returns the normalised JID created.
pub async fn add(store: &Store, domain: &str, jid: &str, password: &str) -> Result<String> {
    let jid = normalize_jid(jid, domain).context("user add")?;
    let creds = credentials(password).context("user add")?;
    store
        .create_account(&jid, &creds)
        .await
        .map_err(|e| store_error("user add", &jid, e))?;
    Ok(jid)
}

/// `user del`: returns the normalised JID deleted.
pub async fn del(store: &Store, domain: &str, jid: &str) -> Result<String> {
    let jid = normalize_jid(jid, domain).context("user del")?;
    store
        .delete_account(&jid)
        .await
        .map_err(|e| store_error("user del", &jid, e))?;
    Ok(jid)
}

/// `user passwd`: returns the normalised JID changed.
pub async fn passwd(store: &Store, domain: &str, jid: &str, password: &str) -> Result<String> {
    let jid = normalize_jid(jid, domain).context("user passwd")?;
    let creds = credentials(password).context("user passwd")?;
    store
        .set_credentials(&jid, &creds)
        .await
        .map_err(|e| store_error("user passwd", &jid, e))?;
    Ok(jid)
}

/// `user list`: every account JID, sorted.
pub async fn list(store: &Store) -> Result<Vec<String>> {
    let mut all = store.list_accounts().await.context("user list")?;
    all.sort();
    Ok(all)
}

/// One good import line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportEntry {
    pub line: usize,
    pub jid: String,
    pub password: String,
}

/// A line that could not be imported: its number (from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Accounts created.
    pub imported: usize,
    /// Good lines whose account already existed (or repeated an earlier line).
    pub skipped: usize,
    /// Lines refused, in line order.
    pub bad: Vec<BadLine>,
}

/// Parses one line: `Ok(None)` for blank lines and `#` comments. The JID
/// ends at the first whitespace; the password is the rest of the line after
/// that whitespace run, without the line ending.
fn parse_line(line: &str, domain: &str) -> Result<Option<(String, String)>, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.trim_start();
    if line.trim_end().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (jid, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| "no password (expected `JID PASSWORD`)".to_owned())?;
    let password = rest.trim_start();
    if password.is_empty() {
        return Err("empty password".into());
    }
    let jid = normalize_jid(jid, domain).map_err(|e| e.to_string())?;
    Ok(Some((jid, password.to_owned())))
}

/// Reads `JID PASSWORD` lines; returns the good entries and the bad lines.
pub fn parse_import(
    mut input: impl BufRead,
    domain: &str,
) -> Result<(Vec<ImportEntry>, Vec<BadLine>)> {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).context("reading stdin")? == 0 {
            break;
        }
        line += 1;
        let parsed = match std::str::from_utf8(&buf) {
            Ok(text) => parse_line(text, domain),
            Err(_) => Err("not valid UTF-8".into()),
        };
        match parsed {
            Ok(Some((jid, password))) => entries.push(ImportEntry {
                line,
                jid,
                password,
            }),
            Ok(None) => {}
            Err(reason) => bad.push(BadLine { line, reason }),
        }
    }
    Ok((entries, bad))
}

/// Hashes passwords on `threads` threads, keeping the input order.
fn hash_parallel(
    entries: &[ImportEntry],
    threads: usize,
) -> Vec<Result<(String, Vec<u8>), BadLine>> {
    let hash_one = |e: &ImportEntry| {
        credentials(&e.password)
            .map(|c| (e.jid.clone(), c))
            .map_err(|err| BadLine {
                line: e.line,
                reason: err.to_string(),
            })
    };
    let per_thread = entries.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = entries
            .chunks(per_thread)
            .map(|part| s.spawn(move || part.iter().map(hash_one).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("hashing thread panicked"))
            .collect()
    })
}

/// Creates the accounts of `entries` (bad lines already found are passed in
/// and returned in the report). Passwords are hashed in parallel on
/// `threads` threads, accounts written with one bulk transaction per
/// [`IMPORT_CHUNK`]. Existing accounts and repeated JIDs are skipped, never
/// overwritten. `progress` is called after each chunk with (done, total).
pub async fn import(
    store: &Store,
    entries: Vec<ImportEntry>,
    mut bad: Vec<BadLine>,
    threads: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport> {
    let existing: HashSet<String> = store
        .list_accounts()
        .await
        .context("user import: listing existing accounts")?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    let mut skipped = 0;
    let todo: Vec<ImportEntry> = entries
        .into_iter()
        .filter(|e| {
            let fresh = !existing.contains(&e.jid) && seen.insert(e.jid.clone());
            if !fresh {
                skipped += 1;
            }
            fresh
        })
        .collect();
    let total = todo.len();
    let mut imported = 0;
    let mut done = 0;
    for chunk in todo.chunks(IMPORT_CHUNK) {
        let chunk_len = chunk.len();
        let chunk = chunk.to_vec();
        let hashed = tokio::task::spawn_blocking(move || hash_parallel(&chunk, threads))
            .await
            .context("user import: hashing")?;
        let mut accounts = Vec::with_capacity(hashed.len());
        for h in hashed {
            match h {
                Ok(a) => accounts.push(a),
                Err(b) => bad.push(b),
            }
        }
        let n = accounts.len();
        let created = store
            .create_accounts(accounts)
            .await
            .map_err(|e| store_error("user import", "bulk write", e))?;
        imported += created;
        // Created concurrently by someone else since we listed: skipped.
        skipped += n - created;
        done += chunk_len;
        progress(done, total);
    }
    bad.sort_by_key(|b| b.line);
    Ok(ImportReport {
        imported,
        skipped,
        bad,
    })
}

/// Worker threads for hashing: every available core.
pub fn hash_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_are_normalised_and_checked() {
        assert_eq!(
            normalize_jid("alice", "localhost").unwrap(),
            "alice@localhost"
        );
        assert_eq!(
            normalize_jid("Alice", "localhost").unwrap(),
            "alice@localhost"
        );
        assert_eq!(
            normalize_jid("bob@localhost", "localhost").unwrap(),
            "bob@localhost"
        );
        let e = normalize_jid("bob@example.org", "localhost").unwrap_err();
        assert!(e.to_string().contains("localhost"), "{e}");
        assert!(normalize_jid("localhost", "example.org").is_ok());
        assert!(normalize_jid("@localhost", "localhost").is_err());
        assert!(normalize_jid("bob@localhost/res", "localhost").is_err());
        assert!(normalize_jid("", "localhost").is_err());
        assert!(normalize_jid("a b", "localhost").is_err());
    }

    #[test]
    fn empty_password_is_refused() {
        assert!(credentials("").is_err());
    }

    #[test]
    fn lines_are_parsed() {
        let d = "localhost";
        assert_eq!(parse_line("\n", d), Ok(None));
        assert_eq!(parse_line("   \r\n", d), Ok(None));
        assert_eq!(parse_line("# a comment\n", d), Ok(None));
        assert_eq!(
            parse_line("Alice secret word\r\n", d),
            Ok(Some(("alice@localhost".into(), "secret word".into())))
        );
        assert_eq!(
            parse_line("bob@localhost\t pw ", d),
            Ok(Some(("bob@localhost".into(), "pw ".into())))
        );
        assert!(parse_line("carol\n", d).is_err());
        assert!(parse_line("carol   \n", d).is_err());
        assert!(parse_line("dave@elsewhere pw\n", d).is_err());
    }

    #[test]
    fn parse_import_numbers_bad_lines() {
        let text = b"a pw\n\n# c\nb\nc@other x\nd pw\n\xff\xfe x\n";
        let (entries, bad) = parse_import(&text[..], "localhost").unwrap();
        let jids: Vec<_> = entries.iter().map(|e| (e.line, e.jid.as_str())).collect();
        assert_eq!(jids, [(1, "a@localhost"), (6, "d@localhost")]);
        let lines: Vec<_> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [4, 5, 7]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn import_into_temp_store() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let store = open_store(&cfg).await.unwrap();
        add(&store, "localhost", "u0", "pw").await.unwrap();
        let mut text = String::from("# header\n\n");
        for i in 0..50 {
            text.push_str(&format!("u{i} password{i}\n"));
        }
        text.push_str("u7 again\nnopassword\n");
        let (entries, bad) = parse_import(text.as_bytes(), "localhost").unwrap();
        let mut calls = 0;
        let report = import(&store, entries, bad, 3, |_, _| calls += 1)
            .await
            .unwrap();
        assert_eq!(report.imported, 49);
        assert_eq!(report.skipped, 2);
        assert_eq!(report.bad.len(), 1);
        assert_eq!(report.bad[0].line, 54);
        assert_eq!(calls, 1);
        let all = list(&store).await.unwrap();
        assert_eq!(all.len(), 50);
        let creds = store.credentials("u13@localhost").await.unwrap().unwrap();
        let creds = StoredCredentials::from_bytes(&creds).unwrap();
        assert!(creds.verify_password("password13"));
        // Importing again creates nothing.
        let (entries, bad) = parse_import(text.as_bytes(), "localhost").unwrap();
        let report = import(&store, entries, bad, 2, |_, _| {}).await.unwrap();
        assert_eq!((report.imported, report.skipped), (0, 51));
        store.close().await.unwrap();
    }

    #[test]
    fn parallel_hashing_keeps_order() {
        let entries: Vec<_> = (0..7)
            .map(|i| ImportEntry {
                line: i,
                jid: format!("u{i}@localhost"),
                password: if i == 3 {
                    String::new()
                } else {
                    format!("p{i}")
                },
            })
            .collect();
        let out = hash_parallel(&entries, 3);
        assert_eq!(out.len(), 7);
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok((jid, _)) => assert_eq!(jid, &format!("u{i}@localhost")),
                Err(b) => assert_eq!(b.line, 3),
            }
        }
    }
}
