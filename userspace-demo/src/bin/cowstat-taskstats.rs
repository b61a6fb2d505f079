// SPDX-License-Identifier: GPL-2.0
//! cowstat-taskstats: the kernel's own per-task copy-on-write figures
//! (delay accounting's `wpcopy_count` and `wpcopy_delay_total`) read over
//! taskstats generic netlink, like the kernel's `tools/accounting/getdelays`.
//!
//! Two modes: query a live task (`--pid`) or thread group (`--tgid`), or
//! register as a listener for task exits (`--listen`) and print the final
//! figures of every task that exits, which is the only way to get them for
//! a task that is already gone (the kernel sends per-task stats of an exited
//! task only to listeners registered before it exits).
//!
//! Offsets are those of `struct taskstats` in the 6.12
//! `include/uapi/linux/taskstats.h` (the wpcopy fields exist since
//! version 13, Linux 6.0).

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser};

const EXAMPLES: &str = "\
EXAMPLES:
    cowstat-taskstats --pid 1
    cowstat-taskstats --tgid \"$(pidof redis-server)\" --json
    cowstat-taskstats --listen --ppid 51 --count 1 --timeout 60

Output: pid N wpcopy_count C wpcopy_delay_total_ns D (with --tgid the first
word is tgid; --listen adds ppid and comm). wpcopy_count counts every
wp_page_copy() run by the task: copy-on-write copies, zero-page breaks and
GUP unshares; wpcopy_delay_total_ns is the time spent in them.
Needs root (CAP_NET_ADMIN), CONFIG_TASKSTATS, CONFIG_TASK_DELAY_ACCT and
delay accounting on: boot with `delayacct` (scripts/vm-run --append
delayacct); tasks started while it was off report 0.
Exit status: 0 ok, 1 error (one line on stderr), 2 usage.";

/// Per-task copy-on-write counts from the kernel's delay accounting.
#[derive(Debug, Parser)]
#[command(
    name = "cowstat-taskstats",
    version,
    about = "Per-task copy-on-write counts from the kernel's delay accounting (taskstats)",
    after_help = EXAMPLES,
    group(ArgGroup::new("mode").required(true).args(["pid", "tgid", "listen"]))
)]
struct Cli {
    /// Query one live task (thread) by id
    #[arg(long)]
    pid: Option<u32>,
    /// Query a live process: the sum over its threads
    #[arg(long)]
    tgid: Option<u32>,
    /// Print the final figures of each task that exits
    #[arg(long)]
    listen: bool,
    /// With --listen: CPUs to listen on (default: all possible)
    #[arg(long, requires = "listen", value_name = "LIST")]
    cpus: Option<String>,
    /// With --listen: only tasks whose parent process is PPID
    #[arg(long, requires = "listen")]
    ppid: Option<u32>,
    /// With --listen: stop after N matching exits
    #[arg(long, requires = "listen", value_name = "N")]
    count: Option<u64>,
    /// With --listen: fail unless --count exits come within SEC
    #[arg(long, requires = "listen", value_name = "SEC")]
    timeout: Option<u64>,
    /// One JSON object per task instead of the text line
    #[arg(long)]
    json: bool,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Msg(String),
    #[error("{what}: {err}")]
    Io { what: &'static str, err: io::Error },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |err| Error::Io { what, err }
}

// Generic netlink constants (include/uapi/linux/{netlink,genetlink}.h).
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
// include/uapi/linux/taskstats.h
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_ATTR_PID: u16 = 1;
const TASKSTATS_CMD_ATTR_TGID: u16 = 2;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
// struct taskstats offsets (6.12 header, checked with offsetof()).
const OFF_VERSION: usize = 0;
const OFF_AC_COMM: usize = 80;
const TS_COMM_LEN: usize = 32;
const OFF_AC_PID: usize = 128;
const OFF_AC_PPID: usize = 132;
const OFF_WPCOPY_COUNT: usize = 400;
const OFF_WPCOPY_DELAY_TOTAL: usize = 408;
const WPCOPY_MIN_VERSION: u16 = 13;

/// The figures read from one `struct taskstats`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stats {
    /// "pid" or "tgid": what `id` is.
    kind: &'static str,
    id: u32,
    ppid: u32,
    comm: String,
    version: u16,
    wpcopy_count: u64,
    wpcopy_delay_total_ns: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// Parses the payload of a TASKSTATS_TYPE_STATS attribute.
fn parse_stats(kind: &'static str, id: u32, b: &[u8]) -> Result<Stats, Error> {
    if b.len() < 2 {
        return Err(Error::Msg("taskstats reply too short".into()));
    }
    let version = u16_at(b, OFF_VERSION);
    if version < WPCOPY_MIN_VERSION || b.len() < OFF_WPCOPY_DELAY_TOTAL + 8 {
        return Err(Error::Msg(format!(
            "taskstats version {version} ({} bytes) has no wpcopy fields: needs version 13+ (Linux 6.0+)",
            b.len()
        )));
    }
    let comm = &b[OFF_AC_COMM..OFF_AC_COMM + TS_COMM_LEN];
    let end = comm.iter().position(|&c| c == 0).unwrap_or(TS_COMM_LEN);
    let pid = u32_at(b, OFF_AC_PID);
    Ok(Stats {
        kind,
        id: if pid != 0 && kind == "pid" { pid } else { id },
        ppid: u32_at(b, OFF_AC_PPID),
        comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
        version,
        wpcopy_count: u64_at(b, OFF_WPCOPY_COUNT),
        wpcopy_delay_total_ns: u64_at(b, OFF_WPCOPY_DELAY_TOTAL),
    })
}

/// Iterates over netlink attributes: (type without flags, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16_at(b, 0) as usize;
        let ty = u16_at(b, 2) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// Parses a TASKSTATS_CMD_NEW message body (after the genl header): the
/// per-task (AGGR_PID) or per-group (AGGR_TGID) stats it carries.
fn parse_taskstats_msg(body: &[u8]) -> Result<Vec<Stats>, Error> {
    let mut out = Vec::new();
    for (ty, nest) in attrs(body) {
        let kind = match ty {
            TASKSTATS_TYPE_AGGR_PID => "pid",
            TASKSTATS_TYPE_AGGR_TGID => "tgid",
            _ => continue,
        };
        let mut id = 0;
        for (inner, data) in attrs(nest) {
            match inner {
                1 | 2 if data.len() >= 4 => id = u32_at(data, 0),
                TASKSTATS_TYPE_STATS => out.push(parse_stats(kind, id, data)?),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Appends one netlink attribute, padded to 4 bytes.
fn put_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    msg.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize((msg.len() + 3) & !3, 0);
}

/// A generic netlink socket (closed on drop).
struct Genl {
    fd: OwnedFd,
    seq: u32,
}

impl Genl {
    fn open() -> Result<Self, Error> {
        use rustix::net::{bind, netlink, socket_with, AddressFamily, SocketFlags, SocketType};
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )
        .map_err(|e| {
            Error::Msg(format!(
                "cannot open a generic netlink socket ({}): kernel without CONFIG_NET?",
                io::Error::from(e)
            ))
        })?;
        // Port id 0: the kernel picks one.
        bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))
            .map_err(|e| io_err("bind netlink socket")(e.into()))?;
        Ok(Genl { fd, seq: 0 })
    }

    /// Sends one request (genl header + attributes); returns its sequence.
    fn send(&mut self, family: u16, cmd: u8, flags: u16, attrs: &[u8]) -> Result<u32, Error> {
        self.seq += 1;
        let mut m = Vec::with_capacity(20 + attrs.len());
        m.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&family.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[cmd, 1, 0, 0]);
        m.extend_from_slice(attrs);
        rustix::net::send(&self.fd, &m, rustix::net::SendFlags::empty())
            .map_err(|e| io_err("send to netlink")(e.into()))?;
        Ok(self.seq)
    }

    /// Receives one datagram, waiting at most `wait` (None: forever).
    /// Returns Ok(None) on timeout.
    fn recv(&self, wait: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let timeout = wait.map(|d| {
            Timespec::try_from(d).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        let r = poll(
            &mut [PollFd::new(&self.fd, PollFlags::IN)],
            timeout.as_ref(),
        )
        .map_err(|e| io_err("poll netlink socket")(e.into()))?;
        if r == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; 65536];
        let n = match rustix::net::recv(&self.fd, &mut buf[..], rustix::net::RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::NOBUFS) => {
                return Err(Error::Msg(
                    "netlink receive buffer overflowed: some task exits were lost".into(),
                ));
            }
            Err(e) => return Err(io_err("receive from netlink")(e.into())),
        };
        buf.truncate(n);
        Ok(Some(buf))
    }
}

/// One netlink message: type, sequence, payload after the nlmsghdr.
struct Msg<'a> {
    ty: u16,
    seq: u32,
    body: &'a [u8],
}

fn messages(mut b: &[u8]) -> Vec<Msg<'_>> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32_at(b, 0) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        out.push(Msg {
            ty: u16_at(b, 4),
            seq: u32_at(b, 8),
            body: &b[16..len],
        });
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// The errno of an NLMSG_ERROR message (0 is an ACK).
fn nl_errno(m: &Msg) -> i32 {
    if m.body.len() >= 4 {
        -(u32_at(m.body, 0) as i32)
    } else {
        libc::EIO
    }
}

fn os_err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// Resolves the TASKSTATS family id with CTRL_CMD_GETFAMILY.
fn taskstats_family(g: &mut Genl) -> Result<u16, Error> {
    let mut a = Vec::new();
    put_attr(&mut a, CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0");
    let seq = g.send(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0, &a)?;
    loop {
        let buf = g
            .recv(Some(Duration::from_secs(5)))?
            .ok_or_else(|| Error::Msg("no answer from the generic netlink controller".into()))?;
        for m in messages(&buf) {
            if m.seq != seq {
                continue;
            }
            if m.ty == NLMSG_ERROR {
                let e = nl_errno(&m);
                return Err(Error::Msg(if e == libc::ENOENT {
                    "no TASKSTATS netlink family: the kernel is built without CONFIG_TASKSTATS"
                        .into()
                } else {
                    format!("resolving the TASKSTATS family failed: {}", os_err(e))
                }));
            }
            if m.ty == GENL_ID_CTRL && m.body.len() >= 4 {
                for (ty, d) in attrs(&m.body[4..]) {
                    if ty == CTRL_ATTR_FAMILY_ID && d.len() >= 2 {
                        return Ok(u16_at(d, 0));
                    }
                }
            }
        }
    }
}

/// Fails with a clear line when delay accounting cannot count anything.
fn check_delayacct() -> Result<(), Error> {
    match std::fs::read_to_string("/proc/sys/kernel/task_delayacct") {
        Ok(s) if s.trim() == "0" => Err(Error::Msg(
            "delay accounting is off: boot with delayacct (scripts/vm-run --append delayacct)".into(),
        )),
        Ok(_) => Ok(()),
        Err(_) if std::path::Path::new("/proc/sys/kernel").is_dir() => Err(Error::Msg(
            "no /proc/sys/kernel/task_delayacct: the kernel is built without CONFIG_TASK_DELAY_ACCT".into(),
        )),
        Err(_) => Ok(()),
    }
}

fn print(s: &Stats, json: bool, listen: bool) {
    if json {
        let mut v = serde_json::Map::new();
        v.insert(s.kind.into(), s.id.into());
        if listen {
            v.insert("ppid".into(), s.ppid.into());
        }
        if !s.comm.is_empty() {
            v.insert("comm".into(), s.comm.clone().into());
        }
        v.insert("version".into(), s.version.into());
        v.insert("wpcopy_count".into(), s.wpcopy_count.into());
        v.insert(
            "wpcopy_delay_total_ns".into(),
            s.wpcopy_delay_total_ns.into(),
        );
        let v = serde_json::Value::Object(v);
        println!("{v}");
    } else if listen {
        println!(
            "{} {} wpcopy_count {} wpcopy_delay_total_ns {} ppid {} comm {}",
            s.kind, s.id, s.wpcopy_count, s.wpcopy_delay_total_ns, s.ppid, s.comm
        );
    } else {
        println!(
            "{} {} wpcopy_count {} wpcopy_delay_total_ns {}",
            s.kind, s.id, s.wpcopy_count, s.wpcopy_delay_total_ns
        );
    }
}

fn query(g: &mut Genl, family: u16, cli: &Cli) -> Result<(), Error> {
    let (attr, id, kind) = match (cli.pid, cli.tgid) {
        (Some(p), _) => (TASKSTATS_CMD_ATTR_PID, p, "pid"),
        (_, Some(t)) => (TASKSTATS_CMD_ATTR_TGID, t, "tgid"),
        _ => unreachable!("clap requires --pid, --tgid or --listen"),
    };
    let mut a = Vec::new();
    put_attr(&mut a, attr, &id.to_ne_bytes());
    let seq = g.send(family, TASKSTATS_CMD_GET, 0, &a)?;
    loop {
        let buf = g
            .recv(Some(Duration::from_secs(5)))?
            .ok_or_else(|| Error::Msg("no taskstats reply within 5 s".into()))?;
        for m in messages(&buf) {
            if m.seq != seq {
                continue;
            }
            if m.ty == NLMSG_ERROR {
                let e = nl_errno(&m);
                return Err(Error::Msg(match e {
                    libc::ESRCH => format!("no task with {kind} {id}"),
                    libc::EPERM => "taskstats needs CAP_NET_ADMIN: run as root".into(),
                    _ => format!("taskstats query for {kind} {id} failed: {}", os_err(e)),
                }));
            }
            if m.ty == family && m.body.len() >= 4 {
                if let Some(s) = parse_taskstats_msg(&m.body[4..])?.into_iter().next() {
                    print(&s, cli.json, false);
                    return Ok(());
                }
            }
        }
    }
}

fn listen(g: &mut Genl, family: u16, cli: &Cli) -> Result<(), Error> {
    let cpus = match &cli.cpus {
        Some(c) => c.clone(),
        None => std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "0".into()),
    };
    let mut mask = cpus.clone().into_bytes();
    mask.push(0);
    let mut a = Vec::new();
    put_attr(&mut a, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, &mask);
    let seq = g.send(family, TASKSTATS_CMD_GET, NLM_F_ACK, &a)?;
    let deadline = cli.timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let mut seen = 0u64;
    let r = (|| loop {
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let Some(buf) = g.recv(wait)? else {
            return Err(Error::Msg(format!(
                "only {seen} of {} matching task exits within {} s",
                cli.count.unwrap_or(1),
                cli.timeout.unwrap_or(0)
            )));
        };
        for m in messages(&buf) {
            if m.ty == NLMSG_ERROR && m.seq == seq {
                match nl_errno(&m) {
                    0 => eprintln!("cowstat-taskstats: listening for task exits on cpus {cpus}"),
                    libc::EPERM => {
                        return Err(Error::Msg(
                            "taskstats needs CAP_NET_ADMIN: run as root".into(),
                        ))
                    }
                    e => {
                        return Err(Error::Msg(format!(
                            "registering for exits on cpus '{cpus}' failed: {}",
                            os_err(e)
                        )))
                    }
                }
            } else if m.ty == family && m.body.len() >= 4 {
                for s in parse_taskstats_msg(&m.body[4..])? {
                    if s.kind != "pid" || cli.ppid.is_some_and(|p| p != s.ppid) {
                        continue;
                    }
                    print(&s, cli.json, true);
                    seen += 1;
                    if cli.count.is_some_and(|n| seen >= n) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    let mut a = Vec::new();
    put_attr(&mut a, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, &mask);
    let _ = g.send(family, TASKSTATS_CMD_GET, 0, &a);
    r
}

fn run(cli: &Cli) -> Result<(), Error> {
    let mut g = Genl::open()?;
    let family = taskstats_family(&mut g)?;
    check_delayacct()?;
    if cli.listen {
        listen(&mut g, family, cli)
    } else {
        query(&mut g, family, cli)
    }
}

fn main() {
    let cli = Cli::parse();
    if cli.count == Some(0) {
        eprintln!("cowstat-taskstats: error: --count must be at least 1");
        std::process::exit(2);
    }
    if let Err(e) = run(&cli) {
        eprintln!("cowstat-taskstats: error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_blob(version: u16, count: u64, delay: u64) -> Vec<u8> {
        let mut b = vec![0u8; 432];
        b[..2].copy_from_slice(&version.to_ne_bytes());
        b[OFF_AC_COMM..OFF_AC_COMM + 12].copy_from_slice(b"redis-server");
        b[OFF_AC_PID..OFF_AC_PID + 4].copy_from_slice(&88u32.to_ne_bytes());
        b[OFF_AC_PPID..OFF_AC_PPID + 4].copy_from_slice(&51u32.to_ne_bytes());
        b[OFF_WPCOPY_COUNT..OFF_WPCOPY_COUNT + 8].copy_from_slice(&count.to_ne_bytes());
        b[OFF_WPCOPY_DELAY_TOTAL..OFF_WPCOPY_DELAY_TOTAL + 8].copy_from_slice(&delay.to_ne_bytes());
        b
    }

    #[test]
    fn parses_nested_aggr_pid() {
        let mut nest = Vec::new();
        put_attr(&mut nest, 1, &88u32.to_ne_bytes());
        put_attr(
            &mut nest,
            TASKSTATS_TYPE_STATS,
            &stats_blob(14, 134, 670_000),
        );
        let mut body = Vec::new();
        put_attr(&mut body, TASKSTATS_TYPE_AGGR_PID, &nest);
        let s = parse_taskstats_msg(&body).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].kind, s[0].id, s[0].ppid), ("pid", 88, 51));
        assert_eq!(s[0].comm, "redis-server");
        assert_eq!(
            (s[0].wpcopy_count, s[0].wpcopy_delay_total_ns),
            (134, 670_000)
        );
    }

    #[test]
    fn rejects_versions_without_wpcopy() {
        let e = parse_stats("pid", 1, &stats_blob(12, 0, 0)).unwrap_err();
        assert!(e.to_string().contains("version 12"));
    }
}
