//! The database location: which backend, and where. `Debug` never shows a
//! password.

use std::path::PathBuf;

/// Where the data lives. `Debug` shows the redacted form.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` connection string.
    Postgres(String),
    /// A SQLite file path.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses `postgres://…`, `postgresql://…`, `sqlite://PATH` or `sqlite:PATH`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                "expected postgres://…, postgresql://…, sqlite://PATH or sqlite:PATH".to_owned()
            })?;
        if path.is_empty() {
            return Err("the sqlite path is empty".to_owned());
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// A form safe to log: the password of a Postgres URL is masked.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(url) => {
                // libpq also takes `?password=`: hide every query parameter.
                let (base, query) = url.split_once('?').unwrap_or((url, ""));
                let base = match (base.find("://"), base.rfind('@')) {
                    (Some(s), Some(at)) if at > s => {
                        let user = base[s + 3..at].split(':').next().unwrap_or("");
                        format!("{}://{}:***@{}", &base[..s], user, &base[at + 1..])
                    }
                    _ => base.to_owned(),
                };
                if query.is_empty() {
                    base
                } else {
                    format!("{base}?***")
                }
            }
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert_eq!(
            DatabaseUrl::parse("sqlite:x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///abs/x.db").unwrap(),
            DatabaseUrl::Sqlite("/abs/x.db".into())
        );
    }

    #[test]
    fn postgres_password_is_redacted() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/tm").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/tm");
        let url = DatabaseUrl::parse("postgres://app@db/tm?password=hunter2").unwrap();
        assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
