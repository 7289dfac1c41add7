//! Script resolution and document-root confinement: the one place that decides which file, if
//! any, a request path may run. Refused paths never reach PHP.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// Where scripts live and which of them may run: the document root plus the rules nginx +
/// PHP-FPM operators set with `root`, `index`, `fastcgi_split_path_info`, `disable_symlinks`
/// and `security.limit_extensions`.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
    index: String,
    extensions: Vec<String>,
    split_path_info: bool,
    allow_symlinks_outside_root: bool,
}

/// A resolved script: the file to run and how the request path splits around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// `SCRIPT_FILENAME`: document root + script name (not symlink-resolved, like nginx).
    pub filename: PathBuf,
    /// `SCRIPT_NAME`: the script's URI path (`/app/index.php`).
    pub script_name: String,
    /// `PATH_INFO`: what followed the script in the path (`/extra` in `/a.php/extra`), or empty.
    pub path_info: String,
}

impl Site {
    /// A site rooted at `root` (which must exist; it is canonicalized once here).
    /// `extensions` are like `[".php"]`.
    pub fn new(
        root: &Path,
        index: &str,
        extensions: &[String],
        split_path_info: bool,
        allow_symlinks_outside_root: bool,
    ) -> Result<Site, std::io::Error> {
        let root = root.canonicalize().map_err(|e| {
            std::io::Error::new(e.kind(), format!("document root {}: {e}", root.display()))
        })?;
        Ok(Site {
            root,
            index: index.to_string(),
            extensions: extensions.to_vec(),
            split_path_info,
            allow_symlinks_outside_root,
        })
    }

    /// The canonical document root (`DOCUMENT_ROOT`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves the request target (`/path?query`, raw as on the request line) to a script.
    ///
    /// Refused with [`EngineError::Forbidden`] (403): a NUL byte (raw or `%00`), a `..`
    /// segment (raw or percent-encoded), a bad percent escape, a script whose extension is not
    /// allowed, a file reached through a symlink leading outside the root (unless allowed).
    /// [`EngineError::NotFound`] (404): no such file.
    pub fn resolve(&self, target: &str) -> Result<Script, EngineError> {
        let raw_path = target.split(['?', '#']).next().unwrap_or("");
        if !raw_path.starts_with('/') {
            return Err(EngineError::BadRequest(format!("request path {raw_path:?} does not start with /")));
        }
        let decoded = percent_decode(raw_path.as_bytes())
            .ok_or_else(|| EngineError::Forbidden(format!("bad percent-encoding in {raw_path:?}")))?;
        if decoded.contains(&0) {
            return Err(EngineError::Forbidden("NUL byte in request path".into()));
        }
        let decoded = String::from_utf8(decoded)
            .map_err(|_| EngineError::Forbidden(format!("request path {raw_path:?} is not UTF-8")))?;
        let path = normalize(&decoded)?;

        let (mut script_name, path_info) = self.split(&path);
        if script_name.ends_with('/') {
            script_name.push_str(&self.index);
        }
        let mut filename = self.root.join(script_name.trim_start_matches('/'));
        if path_info.is_empty() && filename.is_dir() {
            script_name = format!("{}/{}", script_name.trim_end_matches('/'), self.index);
            filename = self.root.join(script_name.trim_start_matches('/'));
        }
        if !self.has_script_extension(&script_name) {
            return Err(EngineError::Forbidden(format!("{script_name} is not a PHP script")));
        }
        let real = match filename.canonicalize() {
            Ok(real) => real,
            Err(_) => return Err(EngineError::NotFound(format!("no script {script_name}"))),
        };
        if !self.allow_symlinks_outside_root && !real.starts_with(&self.root) {
            return Err(EngineError::Forbidden(format!("{script_name} leads outside the document root")));
        }
        if !real.is_file() {
            return Err(EngineError::NotFound(format!("{script_name} is not a file")));
        }
        if !self.has_script_extension_os(real.file_name().unwrap_or_default()) {
            return Err(EngineError::Forbidden(format!("{script_name} points at a non-PHP file")));
        }
        Ok(Script { filename, script_name, path_info })
    }

    /// Splits `/a/b.php/c/d` into (`/a/b.php`, `/c/d`) at the first segment that ends with
    /// an allowed extension and is followed by `/`, like `fastcgi_split_path_info ^(.+?\.php)(/.*)$`.
    fn split(&self, path: &str) -> (String, String) {
        if self.split_path_info {
            let mut at = 0;
            while let Some(slash) = path[at + 1..].find('/').map(|i| i + at + 1) {
                let candidate = &path[..slash];
                if self.has_script_extension(candidate) {
                    return (candidate.to_string(), path[slash..].to_string());
                }
                at = slash;
            }
        }
        (path.to_string(), String::new())
    }

    fn has_script_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|ext| name.len() > ext.len() && name.ends_with(ext.as_str()) && !name[..name.len() - ext.len()].ends_with('/'))
    }

    fn has_script_extension_os(&self, name: &OsStr) -> bool {
        std::str::from_utf8(name.as_bytes()).map(|n| self.has_script_extension(&format!("/{n}"))).unwrap_or(false)
    }
}

/// Decodes `%XX` escapes; `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    if memchr::memchr(b'%', input).is_none() {
        return Some(input.to_vec());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Merges repeated slashes and drops `.` segments; refuses any `..` segment (after decoding)
/// and backslashes, so no path can climb out of the root lexically.
fn normalize(path: &str) -> Result<String, EngineError> {
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(EngineError::Forbidden(format!("`..` in request path {path:?}"))),
            s if s.contains('\\') => {
                return Err(EngineError::Forbidden(format!("backslash in request path {path:?}")))
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() || path.ends_with('/') || path.ends_with("/.") {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(dir: &Path) -> Site {
        Site::new(dir, "index.php", &[".php".to_string()], true, false).unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("uploads")).unwrap();
        std::fs::write(root.join("index.php"), "<?php").unwrap();
        std::fs::write(root.join("sub/index.php"), "<?php").unwrap();
        std::fs::write(root.join("a.php"), "<?php").unwrap();
        std::fs::write(root.join("uploads/image.jpg"), "<?php evil").unwrap();
        std::fs::write(root.join("style.css"), "x").unwrap();
        std::fs::write(dir.path().join("secret.php"), "<?php").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.php"), root.join("link.php")).unwrap();
        std::os::unix::fs::symlink(root.join("a.php"), root.join("inner.php")).unwrap();
        std::os::unix::fs::symlink(root.join("style.css"), root.join("css.php")).unwrap();
        dir
    }

    #[test]
    fn resolves_scripts_index_and_path_info() {
        let dir = tree();
        let s = site(&dir.path().join("root"));
        let r = s.resolve("/a.php?x=1").unwrap();
        assert_eq!((r.script_name.as_str(), r.path_info.as_str()), ("/a.php", ""));
        assert!(r.filename.ends_with("root/a.php"));
        assert_eq!(s.resolve("/").unwrap().script_name, "/index.php");
        assert_eq!(s.resolve("/sub/").unwrap().script_name, "/sub/index.php");
        assert_eq!(s.resolve("/sub").unwrap().script_name, "/sub/index.php");
        let r = s.resolve("/a.php/extra/path").unwrap();
        assert_eq!((r.script_name.as_str(), r.path_info.as_str()), ("/a.php", "/extra/path"));
        assert_eq!(s.resolve("//a.php").unwrap().script_name, "/a.php");
        assert_eq!(s.resolve("/./a.php").unwrap().script_name, "/a.php");
        assert_eq!(s.resolve("/%61.php").unwrap().script_name, "/a.php");
        assert_eq!(s.resolve("/inner.php").unwrap().script_name, "/inner.php");
    }

    #[test]
    fn traversal_corpus_is_refused() {
        let dir = tree();
        let s = site(&dir.path().join("root"));
        let forbidden = [
            "/../secret.php", "/sub/../../secret.php", "/%2e%2e/secret.php", "/%2E%2E%2Fsecret.php",
            "/sub/%2e%2e/%2e%2e/secret.php", "/a.php%00.jpg", "/a.php\0", "/..%2fsecret.php",
            "/link.php", "/style.css", "/uploads/image.jpg", "/%zz.php", "/..\\secret.php",
            "/css.php",
        ];
        for path in forbidden {
            let err = s.resolve(path).unwrap_err();
            assert!(matches!(err, EngineError::Forbidden(_)), "{path}: {err}");
        }
        for path in ["/missing.php", "/uploads/image.jpg/x.php", "/sub/nope.php/info"] {
            let err = s.resolve(path).unwrap_err();
            assert!(matches!(err, EngineError::NotFound(_)), "{path}: {err}");
        }
        assert!(matches!(s.resolve("a.php"), Err(EngineError::BadRequest(_))));
    }

    #[test]
    fn symlinks_outside_allowed_when_configured() {
        let dir = tree();
        let s = Site::new(&dir.path().join("root"), "index.php", &[".php".into()], true, true).unwrap();
        assert_eq!(s.resolve("/link.php").unwrap().script_name, "/link.php");
    }

    #[test]
    fn split_off_keeps_whole_path() {
        let dir = tree();
        let s = Site::new(&dir.path().join("root"), "index.php", &[".php".into()], false, false).unwrap();
        assert!(matches!(s.resolve("/a.php/extra"), Err(EngineError::Forbidden(_))));
    }
}
