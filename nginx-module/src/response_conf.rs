//! The response path's directives: buffering PHP's output in memory and a temp file, as
//! `fastcgi_buffering` and its companions (see [`crate::bridge`] for what the bridge does with
//! them).
//!
//! | directive | context | default |
//! |---|---|---|
//! | `fephp_buffering on \| off;` | http, server, location | `on` |
//! | `fephp_buffers NUMBER SIZE;` (memory a response may hold unsent) | http, server, location | `8 4k\|8k` |
//! | `fephp_temp_path PATH [L1 [L2 [L3]]];` | http, server, location | `fephp_temp` (under the prefix), levels `1 2` |
//! | `fephp_max_temp_file_size SIZE;` (0: no temp file) | http, server, location | `1024m` |
//! | `fephp_temp_file_write_size SIZE;` | http, server, location | 2 × max(`fephp_buffer_size`, one buffer) |
//! | `fephp_hide_header NAME;` | http, server, location | — (always hidden: `Status`, `X-Accel-*`) |
//! | `fephp_pass_header NAME;` | http, server, location | — |
//! | `fephp_ignore_headers NAME ...;` | http, server, location | — |

use std::ffi::{c_char, c_void};
use std::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_merge_path_value, ngx_conf_set_path_slot, ngx_conf_t, ngx_parse_offset, ngx_parse_size,
    ngx_path_init_t, ngx_path_t, ngx_str_t, NGX_ERROR, NGX_LOG_EMERG,
};
use ngx::ngx_conf_log_error;

use crate::conf::{args, fail, flag, text, CONF_ERROR, CONF_OK};

/// The default `fephp_temp_path`, relative to nginx's prefix (as `fastcgi_temp`).
const DEFAULT_TEMP_PATH: &[u8] = b"fephp_temp";
/// The default `fephp_max_temp_file_size` (as `fastcgi_max_temp_file_size`).
const DEFAULT_MAX_TEMP_FILE_SIZE: u64 = 1024 * 1024 * 1024;
/// The default number of `fephp_buffers`.
const DEFAULT_BUFFERS: usize = 8;

/// A location's response settings (unset: `None` / null, merged in [`ResponseConf::merge`]).
#[derive(Debug)]
pub struct ResponseConf {
    /// `fephp_buffering`.
    pub buffering: Option<bool>,
    /// `fephp_buffers NUMBER SIZE`.
    pub buffers: Option<(usize, usize)>,
    /// `fephp_temp_path` (nginx's path object, registered with the cycle so nginx creates it).
    pub temp_path: *mut ngx_path_t,
    /// `fephp_max_temp_file_size`.
    pub max_temp_file_size: Option<u64>,
    /// `fephp_temp_file_write_size` as set (inherited as set, like nginx's
    /// `temp_file_write_size_conf`: its default depends on each level's buffer sizes).
    pub temp_file_write_size: Option<usize>,
    /// Set by merge: the write size in effect here.
    pub write_size: usize,
    /// `fephp_hide_header` names of this level (or, when the level sets neither list, its
    /// parent's), as written.
    pub hide_headers: Option<Vec<String>>,
    /// `fephp_pass_header` names, as `hide_headers`.
    pub pass_headers: Option<Vec<String>>,
    /// Set by merge: the headers not passed to the client here (lowercase): the defaults
    /// ([`DEFAULT_HIDDEN`]) minus `fephp_pass_header`, plus `fephp_hide_header`.
    pub hidden: Vec<String>,
    /// `fephp_ignore_headers` ([`Ignore`] bits).
    pub ignore_headers: Option<u32>,
}

/// The response headers hidden by default, as `fastcgi_hide_header`'s defaults.
pub const DEFAULT_HIDDEN: &[&str] =
    &["status", "x-accel-expires", "x-accel-redirect", "x-accel-limit-rate", "x-accel-buffering", "x-accel-charset"];

/// `fephp_ignore_headers` values (nginx's `NGX_HTTP_UPSTREAM_IGN_*`).
pub struct Ignore;

impl Ignore {
    /// `X-Accel-Redirect`.
    pub const XA_REDIRECT: u32 = 0x2;
    /// `X-Accel-Expires`.
    pub const XA_EXPIRES: u32 = 0x4;
    /// `Expires`.
    pub const EXPIRES: u32 = 0x8;
    /// `Cache-Control`.
    pub const CACHE_CONTROL: u32 = 0x10;
    /// `Set-Cookie`.
    pub const SET_COOKIE: u32 = 0x20;
    /// `X-Accel-Limit-Rate`.
    pub const XA_LIMIT_RATE: u32 = 0x40;
    /// `X-Accel-Buffering`.
    pub const XA_BUFFERING: u32 = 0x80;
    /// `X-Accel-Charset`.
    pub const XA_CHARSET: u32 = 0x100;
    /// `Vary`.
    pub const VARY: u32 = 0x200;

    /// The names `fephp_ignore_headers` takes, as `fastcgi_ignore_headers`.
    pub const NAMES: &[(&str, u32)] = &[
        ("X-Accel-Redirect", Self::XA_REDIRECT),
        ("X-Accel-Expires", Self::XA_EXPIRES),
        ("X-Accel-Limit-Rate", Self::XA_LIMIT_RATE),
        ("X-Accel-Buffering", Self::XA_BUFFERING),
        ("X-Accel-Charset", Self::XA_CHARSET),
        ("Expires", Self::EXPIRES),
        ("Cache-Control", Self::CACHE_CONTROL),
        ("Set-Cookie", Self::SET_COOKIE),
        ("Vary", Self::VARY),
    ];
}

impl Default for ResponseConf {
    fn default() -> Self {
        ResponseConf {
            buffering: None,
            buffers: None,
            temp_path: ptr::null_mut(),
            max_temp_file_size: None,
            temp_file_write_size: None,
            write_size: 0,
            hide_headers: None,
            pass_headers: None,
            hidden: Vec::new(),
            ignore_headers: None,
        }
    }
}

/// What the bridge needs of a buffered response (merged values).
#[derive(Debug, Clone, Copy)]
pub struct Buffering {
    /// `fephp_buffering` (a response's `X-Accel-Buffering` may change it).
    pub enabled: bool,
    /// Memory a response may hold in nginx's buffers unsent (`fephp_buffers` NUMBER × SIZE);
    /// more goes to the temp file.
    pub memory: usize,
    /// `fephp_max_temp_file_size` (0: no temp file; memory only, then back-pressure).
    pub max_temp_file_size: u64,
    /// `fephp_temp_file_write_size`: output collected before one write to the temp file.
    pub write_size: usize,
    /// `fephp_temp_path`.
    pub temp_path: *mut ngx_path_t,
}

impl ResponseConf {
    /// True when the response header `name` (any case) is not passed to the client.
    pub fn is_hidden(&self, name: &str) -> bool {
        if self.hidden.is_empty() {
            return DEFAULT_HIDDEN.iter().any(|h| h.eq_ignore_ascii_case(name));
        }
        self.hidden.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// True when `fephp_ignore_headers` names the header of `bit` ([`Ignore`]).
    pub fn ignores(&self, bit: u32) -> bool {
        self.ignore_headers.unwrap_or(0) & bit != 0
    }

    /// The merged buffering settings (`enabled` false with `fephp_buffering off`: streaming
    /// with back-pressure).
    pub fn buffering(&self) -> Buffering {
        let (n, size) = self.buffers.unwrap_or((DEFAULT_BUFFERS, 4096));
        Buffering {
            enabled: self.buffering.unwrap_or(true),
            memory: n * size,
            max_temp_file_size: self.max_temp_file_size.unwrap_or(DEFAULT_MAX_TEMP_FILE_SIZE),
            write_size: if self.write_size > 0 { self.write_size } else { 2 * size },
            temp_path: self.temp_path,
        }
    }

    /// Inherits unset values from `prev` and applies the defaults (`buffer_size`: the merged
    /// `fephp_buffer_size`), with nginx's checks of `fastcgi_temp_file_write_size`.
    ///
    /// # Safety
    /// `cf` must be the configuration being merged.
    pub unsafe fn merge(&mut self, cf: *mut ngx_conf_t, prev: &ResponseConf, buffer_size: usize) -> Result<(), *mut c_char> {
        if self.buffering.is_none() {
            self.buffering = prev.buffering;
        }
        if self.buffers.is_none() {
            self.buffers = prev.buffers;
        }
        if self.max_temp_file_size.is_none() {
            self.max_temp_file_size = prev.max_temp_file_size;
        }
        if self.temp_file_write_size.is_none() {
            self.temp_file_write_size = prev.temp_file_write_size;
        }
        if self.ignore_headers.is_none() {
            self.ignore_headers = prev.ignore_headers;
        }
        // As `ngx_http_upstream_hide_headers_hash`: a level that sets neither list takes its
        // parent's; otherwise its own lists apply on top of the defaults.
        if self.hide_headers.is_none() && self.pass_headers.is_none() {
            self.hide_headers.clone_from(&prev.hide_headers);
            self.pass_headers.clone_from(&prev.pass_headers);
        }
        self.hidden = hidden_headers(self.hide_headers.as_deref().unwrap_or(&[]), self.pass_headers.as_deref().unwrap_or(&[]));
        let page = crate::conf::page_size();
        let (n, size) = *self.buffers.get_or_insert((DEFAULT_BUFFERS, page));
        self.max_temp_file_size.get_or_insert(DEFAULT_MAX_TEMP_FILE_SIZE);
        let _ = n;
        let biggest = buffer_size.max(size);
        self.write_size = self.temp_file_write_size.unwrap_or(2 * biggest);
        if self.write_size < biggest {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"fephp_temp_file_write_size\" must be equal to or greater than the maximum of the value of \"fephp_buffer_size\" and one of the \"fephp_buffers\""
            );
            return Err(CONF_ERROR);
        }
        let mut init = ngx_path_init_t {
            name: ngx_str_t { len: DEFAULT_TEMP_PATH.len(), data: DEFAULT_TEMP_PATH.as_ptr() as *mut u8 },
            level: [1, 2, 0],
        };
        // SAFETY: `cf` is valid (caller contract); nginx allocates the default path in the
        // configuration pool and registers it with the cycle (created at start-up).
        let rv = unsafe { ngx_conf_merge_path_value(cf, &mut self.temp_path, prev.temp_path, &mut init) };
        if !rv.is_null() {
            return Err(rv);
        }
        Ok(())
    }
}

/// The hidden headers (lowercase): the defaults not in `pass`, then every one of `hide`.
fn hidden_headers(hide: &[String], pass: &[String]) -> Vec<String> {
    let mut hidden: Vec<String> = DEFAULT_HIDDEN
        .iter()
        .filter(|d| !pass.iter().any(|p| p.eq_ignore_ascii_case(d)))
        .map(|d| d.to_string())
        .collect();
    for h in hide {
        let h = h.to_ascii_lowercase();
        if !hidden.contains(&h) {
            hidden.push(h);
        }
    }
    if hidden.is_empty() {
        // Keep "merged" distinguishable from "unmerged" (see `is_hidden`).
        hidden.push(String::new());
    }
    hidden
}

fn size_arg(cf: *mut ngx_conf_t, s: &ngx_str_t) -> Result<usize, *mut c_char> {
    let mut value = *s;
    // SAFETY: `value` is a valid ngx_str_t; ngx_parse_size only reads it.
    let n = unsafe { ngx_parse_size(&mut value) };
    if n == NGX_ERROR as isize || n <= 0 {
        return Err(fail(cf, format_args!("invalid size \"{}\"", text(s))));
    }
    Ok(n as usize)
}

macro_rules! response_setter {
    ($(#[$doc:meta])* $name:ident, |$cf:ident, $cmd:ident, $a:ident, $c:ident| $body:block) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by nginx with a valid `cf` and this module's location configuration at `conf`.
        pub unsafe extern "C" fn $name(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
            ffi_guard!(CONF_ERROR, {
                let $cf = cf;
                let $cmd = cmd;
                // SAFETY: nginx passes the directive's arguments and our location configuration.
                let ($a, $c) = unsafe { (args(cf), &mut (*(conf as *mut crate::conf::LocConf)).response) };
                $body
            })
        }
    };
}

response_setter!(
    /// `fephp_buffering on | off;`.
    set_buffering, |cf, _cmd, a, c| { flag(cf, a, &mut c.buffering) }
);

response_setter!(
    /// `fephp_buffers NUMBER SIZE;`.
    set_buffers, |cf, _cmd, a, c| {
        if c.buffers.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let n = match text(&a[1]).parse::<usize>() {
            Ok(n) if n > 0 && n <= 65536 => n,
            _ => return fail(cf, format_args!("invalid value \"{}\"", text(&a[1]))),
        };
        match size_arg(cf, &a[2]) {
            Ok(size) => c.buffers = Some((n, size)),
            Err(e) => return e,
        }
        CONF_OK
    }
);

response_setter!(
    /// `fephp_max_temp_file_size SIZE;` (0 disables the temp file).
    set_max_temp_file_size, |cf, _cmd, a, c| {
        if c.max_temp_file_size.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut value = a[1];
        // SAFETY: `value` is a valid ngx_str_t; ngx_parse_offset only reads it.
        let n = unsafe { ngx_parse_offset(&mut value) };
        if n < 0 {
            return fail(cf, format_args!("invalid value \"{}\"", text(&a[1])));
        }
        c.max_temp_file_size = Some(n as u64);
        CONF_OK
    }
);

response_setter!(
    /// `fephp_temp_file_write_size SIZE;`.
    set_temp_file_write_size, |cf, _cmd, a, c| {
        if c.temp_file_write_size.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        match size_arg(cf, &a[1]) {
            Ok(n) => c.temp_file_write_size = Some(n),
            Err(e) => return e,
        }
        CONF_OK
    }
);

response_setter!(
    /// `fephp_temp_path PATH [LEVEL1 [LEVEL2 [LEVEL3]]];`: parsed by nginx's own
    /// `ngx_conf_set_path_slot` (levels, duplicates, registration with the cycle).
    set_temp_path, |cf, cmd, _a, c| {
        // SAFETY: the slot reads `*(conf + cmd->offset)` as `ngx_path_t *`; our command's offset
        // is 0 and `conf` is the field itself.
        unsafe { ngx_conf_set_path_slot(cf, cmd, &mut c.temp_path as *mut *mut ngx_path_t as *mut c_void) }
    }
);

response_setter!(
    /// `fephp_hide_header NAME;`: a response header not passed to the client.
    set_hide_header, |_cf, _cmd, a, c| {
        c.hide_headers.get_or_insert_with(Vec::new).push(text(&a[1]));
        CONF_OK
    }
);

response_setter!(
    /// `fephp_pass_header NAME;`: a header hidden by default (`Status`, `X-Accel-*`) passed on.
    set_pass_header, |_cf, _cmd, a, c| {
        c.pass_headers.get_or_insert_with(Vec::new).push(text(&a[1]));
        CONF_OK
    }
);

response_setter!(
    /// `fephp_ignore_headers NAME ...;`: response headers whose special meaning is ignored.
    set_ignore_headers, |cf, _cmd, a, c| {
        if c.ignore_headers.is_some() {
            return fail(cf, format_args!("is duplicate"));
        }
        let mut bits = 0;
        for arg in &a[1..] {
            let name = text(arg);
            match Ignore::NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                Some((_, bit)) => bits |= bit,
                None => return fail(cf, format_args!("invalid value \"{name}\"")),
            }
        }
        c.ignore_headers = Some(bits);
        CONF_OK
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_headers_are_the_defaults_minus_pass_plus_hide() {
        let h = hidden_headers(&["X-Powered-By".into()], &["X-Accel-Redirect".into(), "Status".into()]);
        assert!(h.contains(&"x-powered-by".to_string()));
        assert!(!h.contains(&"x-accel-redirect".to_string()));
        assert!(!h.contains(&"status".to_string()));
        assert!(h.contains(&"x-accel-charset".to_string()));
    }
}
