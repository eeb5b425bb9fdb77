//! Token files: read at startup (an empty or unreadable one refuses the start) and re-read by
//! path when their metadata changes, so a rotated Kubernetes Secret (a `..data` symlink swap)
//! takes effect without a restart.

use super::{Credential, Presented, bearer};
use crate::error::EngineError;
use crate::file_stamp::FileStamp;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token file's metadata is looked at no more often than this (on the request path, so a
/// busy server stats each file at most once a second).
pub const RECHECK: Duration = Duration::from_secs(1);

/// Constant-time equality of a presented token with the expected one.
///
/// Hand-written so no crypto crate is needed: it runs over every presented byte (a length the
/// caller chose, so it reveals nothing), comparing it with the expected byte at the same index
/// modulo the expected length, and folds the length difference in. Its time depends only on
/// the presented length — never on where the first differing byte is, nor on the expected
/// length. `black_box` keeps the optimiser from turning the fold into an early exit.
pub fn ct_eq(expected: &[u8], presented: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let mut diff = expected.len() ^ presented.len();
    for (i, &b) in presented.iter().enumerate() {
        diff = std::hint::black_box(diff | usize::from(b ^ expected[i % expected.len()]));
    }
    diff == 0
}

/// Reads a token: the file's content trimmed of surrounding whitespace, which must be
/// non-empty visible ASCII (what an `authorization` header can carry).
fn read_token(path: &Path) -> Result<(Box<[u8]>, FileStamp), String> {
    // Metadata first: if the file changes between the two, the next check sees a new stamp.
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err("the file is empty; it must hold the token".into());
    }
    if !token.iter().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the token holds characters other than visible ASCII (allowed: \
                    printable ASCII without spaces, as an HTTP header carries it)"
                .into(),
        );
    }
    Ok((token.into(), FileStamp::of_meta(&meta)))
}

#[derive(Debug)]
struct FileState {
    token: Box<[u8]>,
    stamp: FileStamp,
    checked: Instant,
    /// A re-read failed and was reported; no further NOTICE until one succeeds.
    failing: bool,
}

/// One token file (`--auth-token-file` or `--read-token-file`) and its last good token.
#[derive(Debug)]
pub struct TokenFile {
    flag: &'static str,
    path: PathBuf,
    state: Mutex<FileState>,
}

impl TokenFile {
    /// Reads the file named by `flag`; an unreadable or empty file refuses the start.
    pub fn load(flag: &'static str, path: &Path, now: Instant) -> Result<Self, EngineError> {
        let (token, stamp) = read_token(path).map_err(|reason| EngineError::TokenFile {
            flag,
            path: path.display().to_string(),
            reason,
        })?;
        Ok(Self {
            flag,
            path: path.to_path_buf(),
            state: Mutex::new(FileState {
                token,
                stamp,
                checked: now,
                failing: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads the file if [`RECHECK`] has passed since the last look and its metadata
    /// changed. Returns a NOTICE to log: the token was replaced, or (once per failure streak)
    /// the file became unusable and the last good token stays in force.
    pub fn refresh(&self, now: Instant) -> Option<String> {
        let mut st = self.lock();
        if now.saturating_duration_since(st.checked) < RECHECK {
            return None;
        }
        st.checked = now;
        let unchanged =
            std::fs::metadata(&self.path).is_ok_and(|meta| FileStamp::of_meta(&meta) == st.stamp);
        if unchanged {
            return None;
        }
        match read_token(&self.path) {
            Ok((token, stamp)) => {
                let replaced = *token != *st.token;
                st.token = token;
                st.stamp = stamp;
                st.failing = false;
                replaced
                    .then(|| format!("{} {}: new token in force", self.flag, self.path.display()))
            }
            Err(reason) if !st.failing => {
                st.failing = true;
                Some(format!(
                    "{} {}: cannot re-read the token ({reason}); keeping the last good token",
                    self.flag,
                    self.path.display()
                ))
            }
            Err(_) => None,
        }
    }

    /// Whether `presented` is this file's token (constant time, see [`ct_eq`]).
    pub fn matches(&self, presented: &[u8]) -> bool {
        ct_eq(&self.lock().token, presented)
    }
}

/// The configured tokens: admin (`--auth-token-file`) and optionally read
/// (`--read-token-file`).
#[derive(Debug)]
pub struct Tokens {
    admin: TokenFile,
    read: Option<TokenFile>,
}

impl Tokens {
    /// Reads both files; either one unusable refuses the start.
    pub fn load(admin: &Path, read: Option<&Path>, now: Instant) -> Result<Self, EngineError> {
        Ok(Self {
            admin: TokenFile::load("--auth-token-file", admin, now)?,
            read: read
                .map(|p| TokenFile::load("--read-token-file", p, now))
                .transpose()?,
        })
    }

    /// Re-reads changed files (see [`TokenFile::refresh`]); returns NOTICEs to log.
    pub fn refresh(&self, now: Instant) -> Vec<String> {
        std::iter::once(&self.admin)
            .chain(self.read.as_ref())
            .filter_map(|f| f.refresh(now))
            .collect()
    }

    /// Matches an `authorization` header value against the tokens. Both are compared
    /// whatever the first says, so the time does not tell which one matched; should the two
    /// files hold the same token, admin wins.
    pub fn identify(&self, header: Option<&[u8]>) -> Presented {
        let Some(value) = header else {
            return Presented::Missing;
        };
        let Some(token) = bearer(value) else {
            return Presented::Malformed;
        };
        let admin = self.admin.matches(token);
        let read = self.read.as_ref().is_some_and(|r| r.matches(token));
        match (admin, read) {
            (true, _) => Presented::Valid(Credential::Admin),
            (false, true) => Presented::Valid(Credential::Read),
            (false, false) => Presented::Unknown,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(ct_eq(b"secret", b"secret"));
        for other in [
            &b"secreT"[..],
            b"secre",
            b"secrets",
            b"",
            b"secretsecret",
            b"xecret",
        ] {
            assert!(!ct_eq(b"secret", other), "{other:?}");
        }
        assert!(!ct_eq(b"", b""));
    }

    fn write(path: &Path, text: &str) {
        // Write + rename over, as a Secret update or an editor does.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn files_are_trimmed_and_empty_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, read) = (dir.path().join("admin"), dir.path().join("read"));
        write(&admin, "  adm1n-token\n");
        write(&read, "r3ad\n");
        let t0 = Instant::now();
        let tokens = Tokens::load(&admin, Some(&read), t0).unwrap();
        assert_eq!(
            tokens.identify(Some(b"Bearer adm1n-token")),
            Presented::Valid(Credential::Admin)
        );
        assert_eq!(
            tokens.identify(Some(b"Bearer r3ad")),
            Presented::Valid(Credential::Read)
        );
        assert_eq!(tokens.identify(Some(b"Bearer nope")), Presented::Unknown);
        assert_eq!(tokens.identify(Some(b"adm1n-token")), Presented::Malformed);
        assert_eq!(tokens.identify(None), Presented::Missing);

        write(&read, " \n\t");
        let err = Tokens::load(&admin, Some(&read), t0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--read-token-file") && err.contains("empty"),
            "{err}"
        );
        let missing = dir.path().join("missing");
        let err = Tokens::load(&missing, None, t0).unwrap_err().to_string();
        assert!(
            err.contains("--auth-token-file") && err.contains("missing"),
            "{err}"
        );
        write(&read, "has space");
        let err = Tokens::load(&admin, Some(&read), t0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("visible ASCII"), "{err}");
    }

    #[test]
    fn rotation_takes_effect_after_the_recheck_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin");
        write(&path, "old");
        let t0 = Instant::now();
        let file = TokenFile::load("--auth-token-file", &path, t0).unwrap();
        write(&path, "new");
        // Within the period the old token holds (no stat at all).
        assert_eq!(file.refresh(t0 + RECHECK / 2), None);
        assert!(file.matches(b"old"));
        let notice = file.refresh(t0 + RECHECK).unwrap();
        assert!(notice.contains("new token in force"), "{notice}");
        assert!(file.matches(b"new") && !file.matches(b"old"));
        // Unchanged metadata: nothing to say.
        assert_eq!(file.refresh(t0 + RECHECK * 2), None);
    }

    #[test]
    fn an_unusable_file_keeps_the_last_good_token_and_says_so_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin");
        write(&path, "good");
        let t0 = Instant::now();
        let file = TokenFile::load("--auth-token-file", &path, t0).unwrap();
        std::fs::remove_file(&path).unwrap();
        let notice = file.refresh(t0 + RECHECK).unwrap();
        assert!(notice.contains("keeping the last good token"), "{notice}");
        assert_eq!(file.refresh(t0 + RECHECK * 2), None, "reported once");
        assert!(file.matches(b"good"));
        write(&path, "");
        assert_eq!(file.refresh(t0 + RECHECK * 3), None, "still failing");
        assert!(file.matches(b"good"));
        write(&path, "better");
        assert!(file.refresh(t0 + RECHECK * 4).is_some());
        assert!(file.matches(b"better"));
        std::fs::remove_file(&path).unwrap();
        assert!(
            file.refresh(t0 + RECHECK * 5).is_some(),
            "a new failure is reported"
        );
    }

    #[test]
    fn a_symlink_swap_is_seen() {
        // Kubernetes: token -> ..data/token, ..data -> ..2024_01; rotation swaps ..data.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("v1")).unwrap();
        std::fs::create_dir(d.join("v2")).unwrap();
        std::fs::write(d.join("v1/token"), "one").unwrap();
        std::fs::write(d.join("v2/token"), "two").unwrap();
        std::os::unix::fs::symlink("v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", d.join("token")).unwrap();
        let t0 = Instant::now();
        let file = TokenFile::load("--auth-token-file", &d.join("token"), t0).unwrap();
        std::os::unix::fs::symlink("v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert!(file.refresh(t0 + RECHECK).is_some());
        assert!(file.matches(b"two"));
    }
}
