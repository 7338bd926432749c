//! `natterd status` and `natterd kick`: clients of the running server's
//! admin API (`[listen] admin`), authenticated with the admin token from
//! `[admin] token` or `<data_dir>/admin.token`.

use anyhow::{anyhow, bail, Context, Result};
use natter_server::config::Config;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Where to reach the admin listener: its address, or loopback when it
/// listens on every address.
fn target(cfg: &Config) -> SocketAddr {
    let mut a = cfg.listen.admin;
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    a
}

/// One admin API call; the JSON answer of a 2xx response.
fn call(cfg: &Config, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let token = cfg.admin_token().ok_or_else(|| {
        anyhow!(
            "no admin token: set [admin] token in the configuration, or write a token of at least 16 characters to {} (natterd reads the same)",
            cfg.admin_token_path().display()
        )
    })?;
    let addr = target(cfg);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
        format!("cannot reach the admin listener at {addr} ([listen] admin): is natterd running?")
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("reading the answer from {addr}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{addr} answered something that is not HTTP"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("{addr} answered something that is not HTTP"))?;
    let v: Value = serde_json::from_str(body).unwrap_or(Value::String(body.trim().into()));
    let msg = v
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    match status {
        200..=299 => Ok(v),
        401 => bail!("the server refused the admin token: {msg}"),
        _ => bail!("{msg} (HTTP {status})"),
    }
}

/// `natterd status`: prints the server's counts.
pub fn status(cfg: &Config) -> Result<String> {
    let v = call(cfg, "GET", "/api/counts", None)?;
    let n = |k: &str| v.get(k).map(Value::to_string).unwrap_or_default();
    let by = &v["sessions_by_transport"];
    Ok(format!(
        "domain: {}\nsessions: {} (tcp {}, tls {}, websocket {})\nconnections: {}\naccounts: {}\noffline queue: {}\nuptime: {} s\n",
        v["domain"].as_str().unwrap_or(""),
        n("sessions"),
        by["tcp"],
        by["tls"],
        by["websocket"],
        n("connections"),
        n("accounts"),
        n("offline_queue_depth"),
        n("uptime_secs"),
    ))
}

/// `natterd kick JID`: ends that user's (or resource's) sessions.
pub fn kick(cfg: &Config, jid: &str) -> Result<String> {
    let jid = jid.trim();
    let full = if jid.contains('@') {
        jid.to_owned()
    } else {
        format!("{jid}@{}", cfg.domain)
    };
    let v = call(
        cfg,
        "POST",
        "/api/kick",
        Some(&serde_json::json!({ "jid": full })),
    )?;
    Ok(format!("kicked {} session(s) of {full}\n", v["kicked"]))
}
