//! What a plugin run says: its log lines and audit events, collected for the job log
//! and the catalog.

use super::*;

/// Collects audit events and log lines of one call. The host caps audit events per call;
/// log lines past [`LOG_MAX`] are dropped and counted.
#[derive(Default)]
pub(super) struct Collector {
    pub(super) audit: Mutex<Vec<AuditEvent>>,
    pub(super) log: Mutex<(Vec<String>, u64)>,
}

impl Collector {
    /// The kept log lines, plus one final line saying how many were dropped, if any.
    pub(super) fn lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| {
                let (lines, dropped) = &*l;
                let mut out = lines.clone();
                if *dropped > 0 {
                    out.push(format!(
                        "{dropped} further plugin log lines were dropped (at most {LOG_MAX} are kept per call)"
                    ));
                }
                out
            })
            .unwrap_or_default()
    }
}

/// Whether a collected line is at debug level (each T-SQL statement, each request): kept
/// in the job log, left out of what a person reads at the end of a restore.
#[must_use]
pub fn is_debug(line: &str) -> bool {
    line.split_once("] ")
        .is_some_and(|(_, rest)| rest.starts_with(&format!("{:?}: ", host::LogLevel::Debug)))
}

impl host::Events for Collector {
    fn log(&self, plugin: &str, level: host::LogLevel, message: &str) {
        if let Ok(mut l) = self.log.lock() {
            if l.0.len() < LOG_MAX {
                l.0.push(format!("[{plugin}] {level:?}: {message}"));
            } else {
                l.1 += 1;
            }
        }
    }
    fn audit(&self, event: &AuditEvent) {
        if let Ok(mut a) = self.audit.lock() {
            a.push(event.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lines_are_told_apart_from_what_a_person_reads() {
        use host::Events as _;
        let c = Collector::default();
        c.log(
            "sql-server",
            host::LogLevel::Debug,
            "host: sql s1: SELECT 1",
        );
        c.log(
            "sql-server",
            host::LogLevel::Info,
            "Debug: is only a word here",
        );
        c.log(
            "x] Debug",
            host::LogLevel::Warn,
            "a plugin id cannot say it",
        );
        let kept: Vec<bool> = c.lines().iter().map(|l| is_debug(l)).collect();
        assert_eq!(kept, [true, false, false]);
    }

    #[test]
    fn collector_says_how_many_log_lines_it_dropped() {
        use host::Events as _;
        let c = Collector::default();
        for i in 0..LOG_MAX + 5 {
            c.log("p", host::LogLevel::Info, &format!("line {i}"));
        }
        let lines = c.lines();
        assert_eq!(lines.len(), LOG_MAX + 1);
        assert!(
            lines[LOG_MAX].starts_with("5 further plugin log lines were dropped"),
            "{}",
            lines[LOG_MAX]
        );
        let quiet = Collector::default();
        quiet.log("p", host::LogLevel::Info, "one");
        assert_eq!(quiet.lines().len(), 1);
    }
}
