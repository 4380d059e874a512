//! Running a child process to completion and measuring it: wall time from
//! spawn to exit and peak resident set size (`ru_maxrss` from `wait4`).
//! Used by `ember bench` (cold start to first token) and by `compare` (both
//! tools' cold starts and every `llama-bench` / `ember bench` child).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One child process run to completion.
#[derive(Clone, Debug)]
pub struct ChildRun {
    /// From spawn until the child was reaped.
    pub wall: Duration,
    /// The child's `ru_maxrss` in bytes (`None` where `wait4` is not available).
    pub peak_rss: Option<u64>,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `cmd` (stdin closed, stdout and stderr captured) until it exits and
/// measures it. Errors only when it cannot be started or waited for; a
/// non-zero exit is reported in [`ChildRun::success`].
pub fn run_measured(cmd: &mut Command) -> std::io::Result<ChildRun> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    // Read stderr on a thread and stdout here, so that neither pipe can fill
    // up and block the child.
    let err_pipe = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err_pipe {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    let (success, peak_rss) = wait_rusage(&mut child)?;
    let wall = t0.elapsed();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(ChildRun { wall, peak_rss, success, stdout, stderr })
}

/// Reaps `child`: whether it exited with status 0, and its peak RSS in bytes.
#[cfg(unix)]
fn wait_rusage(child: &mut std::process::Child) -> std::io::Result<(bool, Option<u64>)> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "child pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, for which all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `wait` is never
        // called on it); `status` and `ru` are valid, writable out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    Ok((ok, u64::try_from(ru.ru_maxrss).ok().map(|k| k * 1024)))
}

/// Reaps `child`: whether it exited with status 0 (no RSS without `wait4`).
#[cfg(not(unix))]
fn wait_rusage(child: &mut std::process::Child) -> std::io::Result<(bool, Option<u64>)> {
    Ok((child.wait()?.success(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn captures_output_status_and_rss() {
        let r = run_measured(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])).unwrap();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str(), r.success), ("out\n", "err\n", false));
        // A shell has a resident set of some hundreds of KiB at least.
        assert!(r.peak_rss.is_some_and(|b| b > 100 * 1024), "{:?}", r.peak_rss);
        let ok = run_measured(&mut Command::new("true")).unwrap();
        assert!(ok.success);
        assert!(run_measured(&mut Command::new("/nonexistent/ember-test-binary")).is_err());
    }
}
