//! Which requests go to mod_cgi: a script under the document root.

use crate::stat_cache::{Found, Root};
use std::os::fd::{AsRawFd, RawFd};
use wick_conf::View;

/// A script found for a request: how much of the path names it.
pub struct Selected {
    /// Length of SCRIPT_NAME in the (possibly index-extended) path.
    pub script_len: usize,
    /// The path with an index file appended, when the request named a directory.
    pub path: Option<Vec<u8>>,
}

/// Does this request go to mod_cgi? As lighttpd decides: the physical path exists as
/// a regular file (path info allowed), its name ends with a cgi.assign key, and with
/// cgi.execute-x-only it has an x bit. A directory's index files count too.
pub fn select(
    ctx_roots: &mut crate::static_file::Roots,
    cache: &mut crate::stat_cache::StatCache,
    now: u64,
    view: &View,
    path: &[u8],
) -> Option<Selected> {
    if view.cgi_assign.is_empty() {
        return None;
    }
    let assigned = |phys: &[u8], _: &[u8]| {
        view.cgi_assign
            .iter()
            .any(|(ext, _)| phys.ends_with(ext.as_bytes()))
    };
    select_with(
        ctx_roots,
        cache,
        now,
        view,
        path,
        *view.cgi_execute_x_only,
        assigned,
    )
}

/// The file a request names under the document root (path info allowed; a
/// directory's index files count), if `assigned(physical path, URL path of the
/// file)` says it is a gateway's and, with `x_only`, it has an x bit.
pub fn select_with(
    ctx_roots: &mut crate::static_file::Roots,
    cache: &mut crate::stat_cache::StatCache,
    now: u64,
    view: &View,
    path: &[u8],
    x_only: bool,
    assigned: impl Fn(&[u8], &[u8]) -> bool,
) -> Option<Selected> {
    if !path.starts_with(b"/") {
        return None;
    }
    let (dirfd, id) = ctx_roots.get(view.document_root, now)?;
    let root = Root::Beneath {
        dirfd,
        id,
        symlinks: *view.follow_symlink,
    };
    let mut p = path.to_vec();
    if *view.force_lowercase_filenames {
        p.make_ascii_lowercase();
    }
    let assigned = |name: &[u8]| {
        let mut phys = view.document_root.trim_end_matches('/').as_bytes().to_vec();
        phys.extend_from_slice(name);
        assigned(&phys, name)
    };
    let executable = |name: &[u8]| !x_only || has_x_bit(dirfd, name, *view.follow_symlink);
    match cache.lookup(root, &p, now) {
        Found::File { file_len, .. } => {
            let name = &p[..file_len];
            (assigned(name) && executable(name)).then_some(Selected {
                script_len: file_len,
                path: None,
            })
        }
        Found::Dir if p.ends_with(b"/") => {
            for idx in view.index_files.iter() {
                let mut cand = if let Some(abs) = idx.strip_prefix('/') {
                    let mut v = b"/".to_vec();
                    v.extend_from_slice(abs.as_bytes());
                    v
                } else {
                    let mut v = p.clone();
                    v.extend_from_slice(idx.as_bytes());
                    v
                };
                if *view.force_lowercase_filenames {
                    cand.make_ascii_lowercase();
                }
                if let Found::File { file_len, .. } = cache.lookup(root, &cand, now) {
                    if file_len != cand.len() {
                        continue;
                    }
                    if assigned(&cand) && executable(&cand) {
                        return Some(Selected {
                            script_len: cand.len(),
                            path: Some(cand),
                        });
                    }
                    // The index file is not a script: static handling serves it.
                    return None;
                }
            }
            None
        }
        _ => None,
    }
}

pub(super) fn has_x_bit(dirfd: RawFd, name: &[u8], symlinks: bool) -> bool {
    let rel = name.strip_prefix(b"/").unwrap_or(name);
    let mut c = rel.to_vec();
    c.push(0);
    let Ok(cs) = std::ffi::CStr::from_bytes_with_nul(&c) else {
        return false;
    };
    let resolve = 0x08 | 0x02 | if symlinks { 0 } else { 0x04 };
    let flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    match crate::stat_cache::openat2(dirfd, cs, flags, resolve) {
        Ok(fd) => crate::stat_cache::fstat(fd.as_raw_fd())
            .is_ok_and(|st| st.st_mode & (libc::S_IXUSR | libc::S_IXGRP | libc::S_IXOTH) != 0),
        Err(_) => false,
    }
}
