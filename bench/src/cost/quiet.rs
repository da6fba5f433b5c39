//! Standard output held off while the pipeline runs in process: the dispatch handler writes
//! its EMF metric lines there, as Lambda wants them, and here they would bury the report.

use std::io::Write;

/// While alive, whatever is written to fd 1 goes to /dev/null.
pub struct Quiet {
    saved: libc::c_int,
}

impl Quiet {
    /// `None` when stdout cannot be redirected: the run then prints the metric lines too.
    pub fn stdout() -> Option<Quiet> {
        let _ = std::io::stdout().flush();
        // SAFETY: plain descriptor calls on fds this function opens or owns; fd 1 is put back
        // by Drop.
        unsafe {
            let saved = libc::dup(1);
            if saved < 0 {
                return None;
            }
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null < 0 {
                libc::close(saved);
                return None;
            }
            libc::dup2(null, 1);
            libc::close(null);
            Some(Quiet { saved })
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: `saved` is the duplicate of the original fd 1 that `stdout` made.
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
    }
}
