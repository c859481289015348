//! CPU time and peak memory of the processes in a run, read from /proc: the figures that tell a
//! reader whether Herald, PostgreSQL, the receiver or the load generator was the bottleneck.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// Clock ticks per second of `utime`/`stime` in /proc/<pid>/stat.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses),
/// so index 0 is field 3 (`state`) of proc(5).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // `state` is a letter; every other field used here is a number.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

const PPID: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;
const CUTIME: usize = 13;
const CSTIME: usize = 14;

/// User plus system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(&pid.to_string())?;
    Some((f[UTIME] + f[STIME]) as f64 / clock_ticks())
}

/// This process (the load generator), all threads.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Peak resident set size in MB (`VmHWM`).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The postmaster listening on `port`, found by its command line (`-p PORT`): the machine may run
/// other PostgreSQL clusters (other test runs), whose CPU must not count.
pub fn postmaster_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
        else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_postgres = args.first().is_some_and(|a| a.ends_with(b"/postgres"));
        let on_port = args
            .windows(2)
            .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        if is_postgres && on_port {
            return Some(pid);
        }
    }
    None
}

/// CPU seconds of a PostgreSQL cluster: the postmaster, its live children (backends, WAL writer,
/// checkpointer), and the children it has already reaped (its `cutime`/`cstime`), so a backend
/// that ends inside the window is still counted.
pub fn cluster_cpu_seconds(postmaster: u32) -> Option<f64> {
    let pm = stat_fields(&postmaster.to_string())?;
    let mut ticks = pm[UTIME] + pm[STIME] + pm[CUTIME] + pm[CSTIME];
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some(f) = stat_fields(pid)
            && f.get(PPID) == Some(&(postmaster as u64))
        {
            ticks += f[UTIME] + f[STIME];
        }
    }
    Some(ticks as f64 / clock_ticks())
}

/// CPU seconds the whole machine has spent busy (all cores, every process): what is left after
/// the run's own processes is other load on a shared machine, which the figures should be read
/// against.
pub fn machine_busy_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system (idle iowait) irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum();
    busy as f64 / clock_ticks()
}

/// CPU counters of every process in a run at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: Instant,
    pub server: f64,
    pub postgres: Option<f64>,
    pub receiver: f64,
    pub generator: f64,
    pub machine: f64,
}

/// The processes a snapshot reads.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    pub server: u32,
    pub receiver: u32,
    pub postmaster: Option<u32>,
}

impl Watched {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            server: cpu_seconds(self.server).unwrap_or(0.0),
            postgres: self.postmaster.and_then(cluster_cpu_seconds),
            receiver: cpu_seconds(self.receiver).unwrap_or(0.0),
            generator: self_cpu_seconds(),
            machine: machine_busy_seconds(),
        }
    }
}

/// CPU used between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub wall: f64,
    pub server: f64,
    pub postgres: Option<f64>,
    pub receiver: f64,
    pub generator: f64,
    /// CPU of every other process on the machine.
    pub other: f64,
}

impl Usage {
    pub fn between(a: &Snapshot, b: &Snapshot) -> Usage {
        let mut u = Usage {
            wall: (b.at - a.at).as_secs_f64(),
            server: b.server - a.server,
            postgres: a.postgres.zip(b.postgres).map(|(a, b)| b - a),
            receiver: b.receiver - a.receiver,
            generator: b.generator - a.generator,
            other: 0.0,
        };
        let ours = u.server + u.postgres.unwrap_or(0.0) + u.receiver + u.generator;
        u.other = (b.machine - a.machine - ours).max(0.0);
        u
    }
}
