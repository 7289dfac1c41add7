//! PHP's log lines (`log_message`: errors when `error_log` is unset, startup problems): one
//! stderr line each, with a level, and the last few kept in memory for diagnostics and tests.

use std::collections::VecDeque;
use std::sync::Mutex;

const KEEP: usize = 64;

static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// The syslog level's name.
fn level_name(level: i32) -> &'static str {
    match level {
        i32::MIN..=2 => "crit",
        3 => "error",
        4 => "warn",
        5 => "notice",
        6 => "info",
        _ => "debug",
    }
}

/// Writes one PHP log line to stderr and keeps it in the recent-lines ring.
pub(crate) fn emit(level: i32, msg: &str) {
    let line = format!("[{}] php: {}", level_name(level), msg.trim_end());
    eprintln!("fe-php {line}");
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if recent.len() == KEEP {
        recent.pop_front();
    }
    recent.push_back(line);
}

/// The last log lines, oldest first.
pub(crate) fn recent() -> Vec<String> {
    RECENT.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
}
