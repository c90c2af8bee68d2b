//! licensekit's home: where the CLI keeps what outlives one run (change journals; the history
//! store will live here too).

use std::path::PathBuf;

/// The variable that overrides the home directory.
pub const HOME_VAR: &str = "LICENSEKIT_HOME";

/// `$LICENSEKIT_HOME` if set (and not empty), else the platform's state directory
/// (`$XDG_STATE_HOME`, `~/.local/state` on Linux) or, on platforms without one, the local data
/// directory (`~/Library/Application Support` on macOS, `%LOCALAPPDATA%` on Windows), plus
/// `licensekit/`. `None` when no home directory can be found at all.
pub fn licensekit_home() -> Option<PathBuf> {
    home_from(std::env::var_os(HOME_VAR).map(PathBuf::from))
}

fn home_from(overridden: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = overridden.filter(|d| !d.as_os_str().is_empty()) {
        return Some(dir);
    }
    let dirs = directories::BaseDirs::new()?;
    let base = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Some(base.join("licensekit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_wins_and_the_default_ends_in_licensekit() {
        assert_eq!(
            home_from(Some("/tmp/lk".into())),
            Some(PathBuf::from("/tmp/lk"))
        );
        if let Some(default) = home_from(Some(PathBuf::new())) {
            assert!(default.ends_with("licensekit"), "{}", default.display());
        }
    }
}
