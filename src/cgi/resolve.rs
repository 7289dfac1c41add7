//! Script resolution and document-root confinement: the one place that decides which file, if
//! any, a request path may run. Refused paths never reach PHP.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use regex::Regex;

use super::lookup_cache::LookupCache;
use crate::error::EngineError;

/// How a request path splits into `SCRIPT_NAME` and `PATH_INFO` (`fastcgi_split_path_info`).
#[derive(Debug, Clone)]
pub enum SplitRule {
    /// No split: the whole path is the script (`/a.php/x` looks for a file named `x`).
    Off,
    /// Split after the first segment ending in an allowed extension and followed by `/`, like
    /// `fastcgi_split_path_info ^(.+?\.php)(/.*)$` (the default).
    Extension,
    /// A regular expression with two captures, matched against the decoded, normalized path:
    /// capture 1 is `SCRIPT_NAME`, capture 2 `PATH_INFO`. No match: the whole path is the script.
    Regex(Regex),
}

impl SplitRule {
    /// Compiles `pattern` (regex crate syntax: no look-around or backreferences) into a
    /// [`SplitRule::Regex`]. Errors when the pattern does not compile or has fewer than two
    /// capture groups.
    pub fn regex(pattern: &str) -> Result<SplitRule, String> {
        let re = Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?;
        if re.captures_len() < 3 {
            return Err(format!("regex {pattern:?} needs two captures (script name, path info)"));
        }
        Ok(SplitRule::Regex(re))
    }

    /// A stable text form: `off`, `on` or the regex source (a cache key, a log label).
    pub fn as_str(&self) -> &str {
        match self {
            SplitRule::Off => "off",
            SplitRule::Extension => "on",
            SplitRule::Regex(re) => re.as_str(),
        }
    }
}

impl PartialEq for SplitRule {
    fn eq(&self, other: &SplitRule) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.as_str() == other.as_str()
    }
}

impl Eq for SplitRule {}

impl std::hash::Hash for SplitRule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        self.as_str().hash(state);
    }
}

/// How script lookups treat symbolic links: nginx's `disable_symlinks` of the location (the
/// module passes it), or the harness's `allow_symlinks_outside_root`.
///
/// Whatever the policy, `..`, NUL bytes, scripts without an allowed extension (also when a
/// `.php` symlink points at another kind of file) and `/upload.jpg/x.php` stay refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum SymlinkPolicy {
    /// Symlinks are followed wherever they lead, like nginx's static handler and
    /// `fastcgi_pass` with `disable_symlinks off` (nginx's default): Debian's web-app layout
    /// (a document root holding symlinks into `/usr/share/<app>`) works. The harness's
    /// `allow_symlinks_outside_root = true`.
    Follow,
    /// Symlinks are followed while the file they reach stays inside the document root (the
    /// harness's default, `allow_symlinks_outside_root = false`).
    #[default]
    InsideRoot,
    /// `disable_symlinks on [from=PART]`: refused (403) when any component of the path
    /// (document root + script name) after `from` is a symlink.
    Refuse {
        /// `from=`: the initial part of the path whose symlinks are not checked (nginx's rule:
        /// it must end at a component boundary, else the whole path is checked; equal to the
        /// whole path, nothing is checked).
        from: Option<PathBuf>,
    },
    /// `disable_symlinks if_not_owner [from=PART]`: refused (403) when a component after
    /// `from` is a symlink whose owner differs from its target's owner.
    IfNotOwner {
        /// As for [`SymlinkPolicy::Refuse`].
        from: Option<PathBuf>,
    },
}

impl SymlinkPolicy {
    /// The policy of nginx's `disable_symlinks off | on | if_not_owner` (0, 1, 2 as in
    /// `ngx_http_core_loc_conf_t`), with `from=` already evaluated (`None` or empty: none).
    pub fn from_nginx(disable_symlinks: u32, from: Option<&[u8]>) -> SymlinkPolicy {
        let from = from.filter(|f| !f.is_empty()).map(|f| PathBuf::from(OsStr::from_bytes(f)));
        match disable_symlinks {
            0 => SymlinkPolicy::Follow,
            1 => SymlinkPolicy::Refuse { from },
            _ => SymlinkPolicy::IfNotOwner { from },
        }
    }

    /// Checks the symlinks on `path` (an absolute file-system path) by this policy: `Err` with
    /// the offending prefix when one is refused. Only [`SymlinkPolicy::Refuse`] and
    /// [`SymlinkPolicy::IfNotOwner`] check anything here. A component that does not exist ends
    /// the walk (the caller then answers 404).
    fn check(&self, path: &Path) -> Result<(), PathBuf> {
        let (from, owner_only) = match self {
            SymlinkPolicy::Follow | SymlinkPolicy::InsideRoot => return Ok(()),
            SymlinkPolicy::Refuse { from } => (from, false),
            SymlinkPolicy::IfNotOwner { from } => (from, true),
        };
        let bytes = path.as_os_str().as_bytes();
        let start = match from {
            None => 0,
            Some(from) => match check_start(bytes, from.as_os_str().as_bytes()) {
                Some(start) => start,
                None => return Ok(()),
            },
        };
        let ends = bytes.iter().enumerate().skip(start + 1).filter(|(_, &b)| b == b'/').map(|(i, _)| i);
        for end in ends.chain(std::iter::once(bytes.len())) {
            let prefix = Path::new(OsStr::from_bytes(&bytes[..end]));
            let Ok(link) = std::fs::symlink_metadata(prefix) else { return Ok(()) };
            if !link.file_type().is_symlink() {
                continue;
            }
            if !owner_only {
                return Err(prefix.to_path_buf());
            }
            use std::os::unix::fs::MetadataExt;
            let Ok(target) = std::fs::metadata(prefix) else { return Ok(()) };
            if target.uid() != link.uid() {
                return Err(prefix.to_path_buf());
            }
        }
        Ok(())
    }
}

/// Where nginx starts checking symlinks in `path` given `from=` (`ngx_http_set_disable_symlinks`):
/// `Some(0)` = the whole path (from is empty, longer, not a prefix, or ends inside a
/// component), `Some(n)` = after the first `n` bytes, `None` = nothing to check (from is the
/// whole path).
fn check_start(path: &[u8], from: &[u8]) -> Option<usize> {
    if from.is_empty() || from.len() > path.len() || !path.starts_with(from) {
        return Some(0);
    }
    if from.len() == path.len() {
        return None;
    }
    if path[from.len()] == b'/' {
        Some(from.len())
    } else if from.ends_with(b"/") {
        Some(from.len() - 1)
    } else {
        Some(0)
    }
}

/// Where scripts live and which of them may run: the document root plus the rules nginx +
/// PHP-FPM operators set with `root`, `index`, `fastcgi_split_path_info`, `disable_symlinks`
/// and `security.limit_extensions`.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
    /// The document root as configured (absolute, not symlink-resolved): the path nginx's
    /// `disable_symlinks` checks.
    given_root: PathBuf,
    /// The document root itself passes [`Site::symlinks`] (checked once, when the policy is
    /// set): the kernel-confined fast path may answer.
    root_passes: bool,
    /// `O_PATH` descriptor of `root` for the one-syscall lookup ([`Site::probe`]); `None` when
    /// it could not be opened (then every lookup takes the portable path).
    root_fd: Option<Arc<OwnedFd>>,
    index: String,
    extensions: Vec<String>,
    split: SplitRule,
    symlinks: SymlinkPolicy,
    /// Recent [`Probe::File`] / [`Probe::Dir`] answers (shared by clones of this site). A probe
    /// is a fact about the file system that no policy changes (beneath the canonical root,
    /// reached without any symlink); the policy is applied to it on every lookup, so a cached
    /// answer is the uncached one whatever the policy of the site using it.
    lookups: Arc<LookupCache<Probe>>,
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
    /// `extensions` are like `[".php"]`. `split_path_info` picks [`SplitRule::Extension`] or
    /// [`SplitRule::Off`]; [`Site::with_split_rule`] sets any rule.
    /// `allow_symlinks_outside_root` picks [`SymlinkPolicy::Follow`] or
    /// [`SymlinkPolicy::InsideRoot`]; [`Site::with_symlink_policy`] sets any policy.
    pub fn new(
        root: &Path,
        index: &str,
        extensions: &[String],
        split_path_info: bool,
        allow_symlinks_outside_root: bool,
    ) -> Result<Site, std::io::Error> {
        let given = root;
        let root = root.canonicalize().map_err(|e| {
            std::io::Error::new(e.kind(), format!("document root {}: {e}", given.display()))
        })?;
        Ok(Site {
            root_fd: open_root(&root),
            given_root: if given.is_absolute() { given.to_path_buf() } else { root.clone() },
            root_passes: true,
            root,
            index: index.to_string(),
            extensions: extensions.to_vec(),
            split: if split_path_info { SplitRule::Extension } else { SplitRule::Off },
            symlinks: if allow_symlinks_outside_root { SymlinkPolicy::Follow } else { SymlinkPolicy::InsideRoot },
            lookups: Arc::default(),
        })
    }

    /// This site with `policy` deciding which symlinks a script may be reached through.
    pub fn with_symlink_policy(mut self, policy: SymlinkPolicy) -> Site {
        self.root_passes = policy.check(&self.given_root).is_ok();
        self.symlinks = policy;
        self
    }

    /// How this site treats symlinks.
    pub fn symlink_policy(&self) -> &SymlinkPolicy {
        &self.symlinks
    }

    /// This site with `rule` deciding how paths split into `SCRIPT_NAME` and `PATH_INFO`.
    pub fn with_split_rule(mut self, rule: SplitRule) -> Site {
        self.split = rule;
        self
    }

    /// How this site splits paths.
    pub fn split_rule(&self) -> &SplitRule {
        &self.split
    }

    /// The canonical document root (`DOCUMENT_ROOT`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves the request target (`/path?query`, raw as on the request line) to a script.
    ///
    /// Refused with [`EngineError::Forbidden`] (403): a NUL byte (raw or `%00`), a `..`
    /// segment (raw or percent-encoded), a bad percent escape, a script whose extension is not
    /// allowed (or a script symlink to a file without one), a symlink the site's
    /// [`SymlinkPolicy`] refuses. [`EngineError::NotFound`] (404): no such file.
    pub fn resolve(&self, target: &str) -> Result<Script, EngineError> {
        let raw_path = target.split(['?', '#']).next().unwrap_or("");
        if !raw_path.starts_with('/') {
            return Err(EngineError::BadRequest(format!("request path {raw_path:?} does not start with /")));
        }
        // Borrowed unless the path has a `%` (no copy for the common path).
        let decoded = percent_decode(raw_path.as_bytes())
            .ok_or_else(|| EngineError::Forbidden(format!("bad percent-encoding in {raw_path:?}")))?;
        if memchr::memchr(0, &decoded).is_some() {
            return Err(EngineError::Forbidden("NUL byte in request path".into()));
        }
        let not_utf8 = || EngineError::Forbidden(format!("request path {raw_path:?} is not UTF-8"));
        let decoded: Cow<'_, str> = match decoded {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).map_err(|_| not_utf8())?),
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).map_err(|_| not_utf8())?),
        };
        let path = normalize(&decoded)?;

        let (mut script_name, path_info) = self.split(path)?;
        if script_name.ends_with('/') {
            script_name.push_str(&self.index);
        }
        let mut filename = self.root.join(script_name.trim_start_matches('/'));
        let mut probe = self.probe_cached(&script_name);
        if path_info.is_empty() && (probe == Probe::Dir || (probe == Probe::Slow && filename.is_dir())) {
            script_name = format!("{}/{}", script_name.trim_end_matches('/'), self.index);
            filename = self.root.join(script_name.trim_start_matches('/'));
            probe = self.probe_cached(&script_name);
        }
        if !self.has_script_extension(&script_name) {
            return Err(EngineError::Forbidden(format!("{script_name} is not a PHP script")));
        }
        match probe {
            // Beneath the root, no symlink on the way, a regular file with a script name: every
            // policy takes it when the root itself passes the policy.
            Probe::File if self.root_passes => return Ok(Script { filename, script_name, path_info }),
            Probe::Missing if self.root_passes => return Err(EngineError::NotFound(format!("no script {script_name}"))),
            Probe::Dir if self.root_passes => return Err(EngineError::NotFound(format!("{script_name} is not a file"))),
            _ => {}
        }
        let given = self.given_root.join(script_name.trim_start_matches('/'));
        if let Err(link) = self.symlinks.check(&given) {
            return Err(EngineError::Forbidden(format!(
                "{script_name}: symlink {} refused by disable_symlinks",
                link.display()
            )));
        }
        let real = match filename.canonicalize() {
            Ok(real) => real,
            Err(_) => return Err(EngineError::NotFound(format!("no script {script_name}"))),
        };
        if self.symlinks == SymlinkPolicy::InsideRoot && !real.starts_with(&self.root) {
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

    /// [`Site::probe`] through the site's [`LookupCache`] (positive answers only, kept for
    /// [`super::lookup_cache::TTL`]).
    fn probe_cached(&self, script_name: &str) -> Probe {
        let now = Instant::now();
        if let Some(probe) = self.lookups.get(script_name, now) {
            return probe;
        }
        let probe = self.probe(script_name);
        if matches!(probe, Probe::File | Probe::Dir) {
            self.lookups.put(script_name, probe, now);
        }
        probe
    }

    /// Looks `script_name` up beneath the root in one `openat2(RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS)` + `fstat`: the kernel refuses any escape and any symlink, so a
    /// found regular file needs no `realpath` walk. Anything unusual (a symlink, a kernel
    /// without `openat2`, a seccomp filter) answers [`Probe::Slow`]: the caller then
    /// canonicalizes and checks the real path itself.
    fn probe(&self, script_name: &str) -> Probe {
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        let Some(root) = &self.root_fd else { return Probe::Slow };
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Probe::Slow;
        }
        let rel = script_name.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let Ok(c_rel) = std::ffi::CString::new(rel) else { return Probe::Slow };
        // SAFETY: open_how is plain data; zeroed is a valid value before the fields are set.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c_rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => Probe::Missing,
                Some(libc::ENOSYS) | Some(libc::EPERM) => {
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                    Probe::Slow
                }
                _ => Probe::Slow, // ELOOP (a symlink), EXDEV (an escape), EAGAIN, ...
            };
        }
        // SAFETY: openat2 returned a new descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: fstat on an owned O_PATH descriptor with a valid out-pointer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Probe::Slow;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Probe::File,
            libc::S_IFDIR => Probe::Dir,
            _ => Probe::Slow,
        }
    }

    /// Splits the normalized `path` into (script name, path info) by the site's [`SplitRule`].
    /// With [`SplitRule::Extension`], `/a/b.php/c/d` gives (`/a/b.php`, `/c/d`): the first
    /// segment that ends with an allowed extension and is followed by `/`. A regex's script
    /// capture is normalized again (it must start with `/` and may not contain `..`), so no
    /// pattern can point outside the root.
    fn split(&self, path: String) -> Result<(String, String), EngineError> {
        match &self.split {
            SplitRule::Off => {}
            SplitRule::Extension => {
                let mut at = 0;
                while let Some(slash) = path[at + 1..].find('/').map(|i| i + at + 1) {
                    let candidate = &path[..slash];
                    if self.has_script_extension(candidate) {
                        return Ok((candidate.to_string(), path[slash..].to_string()));
                    }
                    at = slash;
                }
            }
            SplitRule::Regex(re) => {
                if let Some(caps) = re.captures(&path) {
                    let script = caps.get(1).map_or("", |m| m.as_str());
                    let info = caps.get(2).map_or("", |m| m.as_str());
                    if !script.starts_with('/') {
                        return Err(EngineError::Forbidden(format!(
                            "split_path_info regex gave script name {script:?} (not starting with /)"
                        )));
                    }
                    let script = normalize(script)?;
                    return Ok((script, info.to_string()));
                }
            }
        }
        Ok((path, String::new()))
    }

    fn has_script_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|ext| name.len() > ext.len() && name.ends_with(ext.as_str()) && !name[..name.len() - ext.len()].ends_with('/'))
    }

    fn has_script_extension_os(&self, name: &OsStr) -> bool {
        std::str::from_utf8(name.as_bytes()).map(|n| self.has_script_extension(&format!("/{n}"))).unwrap_or(false)
    }
}

/// What [`Site::probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A regular file, beneath the root, reached without any symlink.
    File,
    /// A directory, likewise.
    Dir,
    /// Nothing there.
    Missing,
    /// Not decided here: take the portable path (canonicalize and compare).
    Slow,
}

/// Opens the document root as an `O_PATH` directory descriptor.
fn open_root(root: &Path) -> Option<Arc<OwnedFd>> {
    let c = std::ffi::CString::new(root.as_os_str().as_bytes()).ok()?;
    // SAFETY: NUL-terminated path; O_PATH opens nothing but a reference.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    // SAFETY: a non-negative return is a new descriptor we own.
    (fd >= 0).then(|| Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Decodes `%XX` escapes; `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    if memchr::memchr(b'%', input).is_none() {
        return Some(Cow::Borrowed(input));
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
    Some(Cow::Owned(out))
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
    fn probe_takes_the_one_syscall_path_and_defers_symlinks() {
        let dir = tree();
        let s = site(&dir.path().join("root"));
        assert_eq!(s.probe("/a.php"), Probe::File);
        assert_eq!(s.probe("/sub"), Probe::Dir);
        assert_eq!(s.probe("/missing.php"), Probe::Missing);
        assert_eq!(s.probe("/link.php"), Probe::Slow, "a symlink goes through canonicalize");
        assert_eq!(s.probe("/inner.php"), Probe::Slow);
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

    fn forbidden(r: Result<Script, EngineError>) -> bool {
        matches!(r, Err(EngineError::Forbidden(_)))
    }

    #[test]
    fn symlink_policies_follow_nginx_disable_symlinks() {
        let dir = tree();
        let root = dir.path().join("root");
        let with = |p: SymlinkPolicy| site(&root).with_symlink_policy(p);
        // off: followed even outside the root
        let follow = with(SymlinkPolicy::Follow);
        assert_eq!(follow.resolve("/link.php").unwrap().script_name, "/link.php");
        assert_eq!(follow.resolve("/inner.php").unwrap().script_name, "/inner.php");
        // the harness's default: only inside the root
        let inside = with(SymlinkPolicy::InsideRoot);
        assert!(forbidden(inside.resolve("/link.php")));
        assert!(inside.resolve("/inner.php").is_ok());
        // on: no symlink at all, from= skips an initial part
        for from in [None, Some(root.clone()), Some(root.join(""))] {
            let on = with(SymlinkPolicy::Refuse { from });
            assert!(forbidden(on.resolve("/link.php")));
            assert!(forbidden(on.resolve("/inner.php")));
            assert!(on.resolve("/a.php").is_ok());
        }
        let whole = with(SymlinkPolicy::Refuse { from: Some(root.join("link.php")) });
        assert!(whole.resolve("/link.php").is_ok(), "from= equal to the whole path checks nothing");
        // if_not_owner: links owned like their targets are followed
        let owner = with(SymlinkPolicy::IfNotOwner { from: None });
        assert!(owner.resolve("/link.php").is_ok());
        assert!(owner.resolve("/inner.php").is_ok());
        // whatever the policy: non-PHP targets, traversal, NUL, /upload.jpg/x.php
        for p in [SymlinkPolicy::Follow, SymlinkPolicy::InsideRoot, SymlinkPolicy::Refuse { from: None }] {
            let s = with(p.clone());
            for path in ["/css.php", "/../secret.php", "/%2e%2e/secret.php", "/a.php%00", "/style.css", "/uploads/image.jpg"] {
                assert!(forbidden(s.resolve(path)), "{p:?} {path}");
            }
            assert!(s.resolve("/uploads/image.jpg/x.php").is_err(), "{p:?}");
        }
    }

    #[test]
    fn debian_web_app_layout_works_with_symlinks_followed() {
        // /srv/www/mediawiki -> /var/lib/mediawiki, whose index.php -> /usr/share/mediawiki/index.php
        let dir = tempfile::tempdir().unwrap();
        let (root, lib, share) = (dir.path().join("www"), dir.path().join("lib"), dir.path().join("share"));
        for d in [&root, &lib, &share] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(share.join("index.php"), "<?php").unwrap();
        std::os::unix::fs::symlink(share.join("index.php"), lib.join("index.php")).unwrap();
        std::os::unix::fs::symlink(&lib, root.join("mediawiki")).unwrap();
        let s = |p| site(&root).with_symlink_policy(p);
        for path in ["/mediawiki/index.php", "/mediawiki/", "/mediawiki", "/mediawiki/index.php/Main_Page"] {
            let r = s(SymlinkPolicy::Follow).resolve(path).unwrap();
            assert_eq!(r.script_name, "/mediawiki/index.php", "{path}");
            assert!(r.filename.ends_with("www/mediawiki/index.php"));
            assert!(forbidden(s(SymlinkPolicy::InsideRoot).resolve(path)), "{path}");
            assert!(forbidden(s(SymlinkPolicy::Refuse { from: None }).resolve(path)), "{path}");
        }
    }

    #[test]
    fn a_symlinked_document_root_is_refused_by_on_unless_from_covers_it() {
        let dir = tree();
        let link = dir.path().join("rootlink");
        std::os::unix::fs::symlink(dir.path().join("root"), &link).unwrap();
        let s = |p| site(&link).with_symlink_policy(p);
        assert!(forbidden(s(SymlinkPolicy::Refuse { from: None }).resolve("/a.php")));
        assert!(forbidden(s(SymlinkPolicy::Refuse { from: None }).resolve("/sub/")));
        // like nginx (ELOOP at the root before ENOENT below it)
        assert!(forbidden(s(SymlinkPolicy::Refuse { from: None }).resolve("/missing.php")));
        assert!(s(SymlinkPolicy::Refuse { from: Some(link.clone()) }).resolve("/a.php").is_ok());
        assert!(s(SymlinkPolicy::Follow).resolve("/a.php").is_ok());
    }

    #[test]
    fn if_not_owner_refuses_a_link_owned_by_someone_else() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: changing a symlink's owner needs root");
            return;
        }
        let dir = tree();
        let root = dir.path().join("root");
        let link = std::ffi::CString::new(root.join("link.php").as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path; lchown changes the link itself.
        assert_eq!(unsafe { libc::lchown(link.as_ptr(), 65534, 65534) }, 0);
        let s = site(&root).with_symlink_policy(SymlinkPolicy::IfNotOwner { from: None });
        assert!(forbidden(s.resolve("/link.php")));
        assert!(s.resolve("/inner.php").is_ok());
        assert!(site(&root).with_symlink_policy(SymlinkPolicy::Follow).resolve("/link.php").is_ok());
    }

    #[test]
    fn check_start_is_nginx_from_rule() {
        assert_eq!(check_start(b"/srv/www/a.php", b"/srv/www"), Some(8));
        assert_eq!(check_start(b"/srv/www/a.php", b"/srv/www/"), Some(8));
        assert_eq!(check_start(b"/srv/www/a.php", b"/srv/w"), Some(0), "inside a component: everything");
        assert_eq!(check_start(b"/srv/www/a.php", b"/other"), Some(0));
        assert_eq!(check_start(b"/srv/www/a.php", b""), Some(0));
        assert_eq!(check_start(b"/srv/www/a.php", b"/srv/www/a.php"), None);
        assert_eq!(SymlinkPolicy::from_nginx(0, Some(b"/x")), SymlinkPolicy::Follow);
        assert_eq!(SymlinkPolicy::from_nginx(1, Some(b"")), SymlinkPolicy::Refuse { from: None });
        assert_eq!(SymlinkPolicy::from_nginx(2, Some(b"/x")), SymlinkPolicy::IfNotOwner { from: Some("/x".into()) });
    }

    #[test]
    fn cached_lookups_answer_like_uncached_ones_under_every_policy() {
        let dir = tree();
        let root = dir.path().join("root");
        let policies = [
            SymlinkPolicy::Follow,
            SymlinkPolicy::InsideRoot,
            SymlinkPolicy::Refuse { from: None },
            SymlinkPolicy::IfNotOwner { from: None },
        ];
        let paths = ["/a.php", "/inner.php", "/link.php", "/css.php", "/sub", "/sub/", "/missing.php", "/"];
        let answer = |r: Result<Script, EngineError>| r.map_err(|e| e.status());
        // One cache shared by every policy (clones of one site), warmed in every order.
        let shared = site(&root);
        for _ in 0..2 {
            for p in &policies {
                let warm = shared.clone().with_symlink_policy(p.clone());
                for path in paths {
                    let fresh = site(&root).with_symlink_policy(p.clone());
                    assert_eq!(answer(warm.resolve(path)), answer(fresh.resolve(path)), "{p:?} {path}");
                }
            }
        }
    }

    #[test]
    fn split_off_keeps_whole_path() {
        let dir = tree();
        let s = Site::new(&dir.path().join("root"), "index.php", &[".php".into()], false, false).unwrap();
        assert!(matches!(s.resolve("/a.php/extra"), Err(EngineError::Forbidden(_))));
    }

    #[test]
    fn split_regex_like_fastcgi_split_path_info() {
        let dir = tree();
        let root = dir.path().join("root");
        let s = site(&root).with_split_rule(SplitRule::regex(r"^(.+?\.php)(/.*)$").unwrap());
        let r = s.resolve("/a.php/extra/path?q").unwrap();
        assert_eq!((r.script_name.as_str(), r.path_info.as_str()), ("/a.php", "/extra/path"));
        // no match: the whole path is the script
        assert_eq!(s.resolve("/a.php").unwrap().path_info, "");
        assert_eq!(s.resolve("/sub/").unwrap().script_name, "/sub/index.php");
        // a greedy pattern splits at the last `.php/`
        std::fs::create_dir_all(root.join("d.php")).unwrap();
        std::fs::write(root.join("d.php/x.php"), "<?php").unwrap();
        let greedy = site(&root).with_split_rule(SplitRule::regex(r"^(.+\.php)(/.*)$").unwrap());
        let r = greedy.resolve("/d.php/x.php/y").unwrap();
        assert_eq!((r.script_name.as_str(), r.path_info.as_str()), ("/d.php/x.php", "/y"));
        // a pattern whose PATH_INFO may be empty
        let opt = site(&root).with_split_rule(SplitRule::regex(r"^(.+\.php)(.*)$").unwrap());
        assert_eq!(opt.resolve("/a.php").unwrap().script_name, "/a.php");
    }

    #[test]
    fn split_regex_cannot_escape_or_run_non_php() {
        let dir = tree();
        let root = dir.path().join("root");
        std::fs::write(root.join("..a.php"), "<?php").unwrap();
        // capture 1 = "/.." of "/..a.php": normalized again, refused
        let s = site(&root).with_split_rule(SplitRule::regex(r"^(/\.\.)(.*)$").unwrap());
        assert!(matches!(s.resolve("/..a.php"), Err(EngineError::Forbidden(_))));
        // capture 1 not starting with /: refused
        let s = site(&root).with_split_rule(SplitRule::regex(r"^/(.+?\.php)(/.*)$").unwrap());
        assert!(matches!(s.resolve("/a.php/x"), Err(EngineError::Forbidden(_))));
        // a capture that is not a PHP script is still refused
        let s = site(&root).with_split_rule(SplitRule::regex(r"^(.+?\.jpg)(/.*)$").unwrap());
        assert!(matches!(s.resolve("/uploads/image.jpg/x.php"), Err(EngineError::Forbidden(_))));
        // traversal is refused before the regex sees the path
        let s = site(&root).with_split_rule(SplitRule::regex(r"^(.+?\.php)(/.*)$").unwrap());
        assert!(matches!(s.resolve("/../secret.php/x"), Err(EngineError::Forbidden(_))));
    }

    #[test]
    fn split_rule_regex_needs_two_captures() {
        assert!(SplitRule::regex(r"^(.+\.php)$").unwrap_err().contains("two captures"));
        assert!(SplitRule::regex(r"^((").unwrap_err().contains("invalid regex"));
        assert_eq!(SplitRule::regex(r"^(a)(b)$").unwrap().as_str(), "^(a)(b)$");
        assert_eq!(SplitRule::Extension, SplitRule::Extension);
        assert_ne!(SplitRule::Off, SplitRule::Extension);
    }
}
