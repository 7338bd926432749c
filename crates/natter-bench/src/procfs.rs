//! Process metrics from /proc: the server's memory and CPU, our own CPU.

use std::io;

/// One look at a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// VmRSS from /proc/PID/status.
    pub rss_kib: u64,
    /// Pss from /proc/PID/smaps_rollup (0 when the kernel has no rollup).
    pub pss_kib: u64,
    /// utime + stime from /proc/PID/stat, in seconds.
    pub cpu_secs: f64,
}

/// The value of a `Key:   123 kB` line.
pub fn parse_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.
/// The command name (field 2) may hold spaces and parentheses: fields are
/// counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11); // field 3 is index 0
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_sec() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// CPU seconds used by process `pid` ("self" for this process).
pub fn cpu_secs(pid: &str) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc stat"))?;
    Ok(ticks as f64 / ticks_per_sec())
}

/// This process's CPU seconds (0 if /proc is unreadable).
pub fn self_cpu_secs() -> f64 {
    cpu_secs("self").unwrap_or(0.0)
}

/// RSS, PSS and CPU of `pid`.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Ok(Sample {
        rss_kib: parse_kib(&status, "VmRSS").unwrap_or(0),
        pss_kib: parse_kib(&rollup, "Pss").unwrap_or(0),
        cpu_secs: cpu_secs(&pid.to_string())?,
    })
}

/// Samples `pid` if one was given.
pub fn maybe_sample(pid: Option<u32>) -> Option<Sample> {
    pid.and_then(|p| match sample(p) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("natter-bench: cannot read /proc/{p}: {e}");
            None
        }
    })
}

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            eprintln!("natter-bench: cannot raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_rollup() {
        let status =
            "Name:\tnatterd\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1000 kB\n";
        assert_eq!(parse_kib(status, "VmRSS"), Some(12345));
        assert_eq!(parse_kib(status, "VmSwap"), None);
        let rollup = "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:  9000 kB\nPss:  8123 kB\nPss_Anon: 7000 kB\n";
        assert_eq!(parse_kib(rollup, "Pss"), Some(8123));
        assert_eq!(parse_kib(rollup, "Pss_Anon"), Some(7000));
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 8 9 20 0 4 0 100 1000 50";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn reads_own_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
        assert!(s.cpu_secs >= 0.0);
        assert!(self_cpu_secs() >= 0.0);
    }
}
