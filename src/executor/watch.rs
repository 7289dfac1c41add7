//! `watch=GLOB` of worker mode: a fingerprint of every file matching the patterns (a matching
//! directory counts with everything under it, symlinks not followed into directories), taken by
//! the supervisor about once a second. A different fingerprint (a file changed, appeared or went)
//! restarts every worker, so development sees new code without a reload.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// Most files looked at per fingerprint (a pattern matching a huge tree stops there).
const MAX_FILES: usize = 100_000;

/// A hash of the path, size and modification time of every file the patterns match.
pub fn fingerprint(patterns: &[String]) -> u64 {
    let mut h = DefaultHasher::new();
    let mut seen = 0usize;
    for pattern in patterns {
        for path in super::sys::glob(pattern) {
            add(&path, &mut h, &mut seen);
        }
    }
    seen.hash(&mut h);
    h.finish()
}

fn add(path: &Path, h: &mut DefaultHasher, seen: &mut usize) {
    if *seen >= MAX_FILES {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    *seen += 1;
    path.hash(h);
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else { return };
        let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            add(&p, h, seen);
        }
        return;
    }
    // A symlink to a file counts with its target's size and time.
    let meta = std::fs::metadata(path).unwrap_or(meta);
    meta.len().hash(h);
    meta.modified().ok().hash(h);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_changes_under_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.php"), "a").unwrap();
        std::fs::write(root.join("b.php"), "b").unwrap();
        std::fs::write(root.join("c.txt"), "c").unwrap();
        let patterns = vec![format!("{}/src", root.display()), format!("{}/*.php", root.display())];
        let first = fingerprint(&patterns);
        assert_eq!(first, fingerprint(&patterns));
        // Not matched: no change.
        std::fs::write(root.join("c.txt"), "cc").unwrap();
        assert_eq!(first, fingerprint(&patterns));
        // Content (size) under a watched directory.
        std::fs::write(root.join("src/a.php"), "aa").unwrap();
        let second = fingerprint(&patterns);
        assert_ne!(first, second);
        // A new file matching a pattern.
        std::fs::write(root.join("d.php"), "d").unwrap();
        let third = fingerprint(&patterns);
        assert_ne!(second, third);
        // A file going away.
        std::fs::remove_file(root.join("b.php")).unwrap();
        assert_ne!(third, fingerprint(&patterns));
    }
}
