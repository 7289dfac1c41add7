//! One-line log events on stderr with a level: `2026-11-25T14:02:03Z WARN fpm: message`.
//! nginx redirects a worker's stderr into its error log, so the module gets these too.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Severity of a log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed for one request or the service.
    Error = 1,
    /// Something odd that was handled.
    Warn = 2,
    /// Lifecycle events.
    Info = 3,
    /// Per-request detail.
    Debug = 4,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level that is written (default `Info`).
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True when events at `level` are written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one event line (newlines inside `msg` are escaped so one event stays one line).
pub fn write(level: Level, target: &str, msg: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let name = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    let text = msg.to_string().replace('\n', "\\n");
    let line = format!("{} {name} {target}: {text}\n", timestamp());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs at a level: `fephp::log!(Warn, "fpm", "stderr: {}", text)`.
#[macro_export]
macro_rules! log {
    ($level:ident, $target:expr, $($arg:tt)*) => {
        $crate::log::write($crate::log::Level::$level, $target, format_args!($($arg)*))
    };
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` without a date crate.
fn timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
