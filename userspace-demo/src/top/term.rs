// SPDX-License-Identifier: GPL-2.0
//! The terminal side of `top`: is stdout a terminal and how big, keys
//! without echo, Ctrl-C and window-size signals, and a guard that gives
//! the terminal back as it was, even on an error or a panic.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static QUIT: AtomicBool = AtomicBool::new(false);
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_quit(_: libc::c_int) {
    QUIT.store(true, Ordering::Relaxed);
}

extern "C" fn on_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: sigaction with a zeroed struct plus a handler that only
    // stores to an atomic (async-signal-safe); no SA_RESTART, so a wait in
    // poll() returns at once with EINTR.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        // A signal the shell told us to ignore (a background job's SIGINT) stays ignored.
        if old.sa_sigaction == libc::SIG_IGN {
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Ctrl-C, SIGTERM and SIGHUP end the loop cleanly; SIGWINCH redraws.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        handle(sig, on_quit);
    }
    handle(libc::SIGWINCH, on_resize);
}

/// True if `fd` is a terminal.
pub fn is_tty(fd: libc::c_int) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Columns and rows of the terminal on stdout, if it says.
pub fn size() -> Option<(usize, usize)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct that we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then(|| (ws.ws_col.into(), ws.ws_row.into()))
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The deadline passed.
    Due,
    /// `q`, Ctrl-C or a termination signal.
    Quit,
    /// The terminal changed size.
    Resized,
}

/// Waits until `deadline`, a quit signal, a resize or (if `keys`) `q` on
/// stdin.
pub fn wait_until(deadline: Instant, keys: bool) -> Wake {
    loop {
        if QUIT.load(Ordering::Relaxed) {
            return Wake::Quit;
        }
        if RESIZED.swap(false, Ordering::Relaxed) {
            return Wake::Resized;
        }
        let now = Instant::now();
        if now >= deadline {
            return Wake::Due;
        }
        let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that we own (none when keys are not read).
        let n = unsafe { libc::poll(&mut pfd, u64::from(keys) as libc::nfds_t, ms) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 32];
            // SAFETY: reads at most buf.len() bytes into buf.
            let got = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
            if got <= 0 {
                // stdin closed: stop reading keys, keep refreshing.
                return wait_until(deadline, false);
            }
            if buf[..got as usize].iter().any(|b| matches!(b, b'q' | b'Q')) {
                return Wake::Quit;
            }
        }
    }
}

/// The full-screen mode: alternate screen, hidden cursor, stdin without
/// line buffering or echo. Dropping it restores all of it.
pub struct Screen {
    saved: Option<libc::termios>,
}

impl Screen {
    /// Enters the full-screen mode.
    pub fn enter() -> Screen {
        let saved = is_tty(libc::STDIN_FILENO)
            .then(|| {
                // SAFETY: tcgetattr/tcsetattr on stdin with a termios we own.
                unsafe {
                    let mut t: libc::termios = std::mem::zeroed();
                    if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                        return None;
                    }
                    let saved = t;
                    t.c_lflag &= !(libc::ICANON | libc::ECHO);
                    t.c_cc[libc::VMIN] = 1;
                    t.c_cc[libc::VTIME] = 0;
                    libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
                    Some(saved)
                }
            })
            .flatten();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
        let _ = out.flush();
        Screen { saved }
    }

    /// Replaces the screen's contents with `painted` (from `render::paint`).
    pub fn draw(&self, painted: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(painted.as_bytes())?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes saved by `enter`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        }
    }
}
