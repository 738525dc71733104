//! Test support: a fresh PostgreSQL database for one test, on the server
//! named by `TEST_DATABASE_URL`, dropped when the test ends. Public so that
//! the tests of other crates (several `serve` processes on one database, say)
//! can use the same rules as the store's own.

// Test support panics on purpose: a helper failing is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Once;
use tokio_postgres::NoTls;

/// The variable naming the server (and a database to connect to first,
/// such as `postgres`) on which tests create their databases.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// One test's own database. Dropping it drops the database, sessions included.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates `gpc_test_<label>_<random>`; `None` when `TEST_DATABASE_URL`
    /// is not set, after saying so once on stderr, so that a skipped run
    /// does not pass as a tested one unnoticed. Under CI (`CI` set) a missing
    /// URL is a failure: CI must always test both backends.
    pub async fn create(label: &str) -> Option<Self> {
        let admin_url = match std::env::var(TEST_DATABASE_URL) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
                assert!(
                    !ci,
                    "{TEST_DATABASE_URL} is not set under CI: run the tests through \
                     scripts/with-postgres"
                );
                skipped_once();
                return None;
            }
        };
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("gpc_test_{label}_{}", &random[..16]);
        let admin = connect(&admin_url).await;
        // template0 and explicit settings: the test database is UTF-8 with
        // byte-order collation whatever the server's defaults.
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' \
                 LC_COLLATE 'C' LC_CTYPE 'C'"
            ))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        Some(Self {
            name,
            url,
            admin_url,
        })
    }

    /// A connection URL for this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection to this database, for looking behind a backend's back.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// A connection to the server's own database (`TEST_DATABASE_URL`), for
    /// what cannot be done from inside this one (refusing its connections).
    pub async fn connect_admin(&self) -> tokio_postgres::Client {
        connect(&self.admin_url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        // A thread with its own runtime: Drop cannot await, and the test's
        // runtime may be shutting down.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async {
                let admin = connect(&admin_url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: test database {} was not dropped",
                self.name
            );
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {TEST_DATABASE_URL}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn skipped_once() {
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests not run: {TEST_DATABASE_URL} not set \
             (scripts/with-postgres cargo test sets it)"
        );
    });
}

/// `url` with its database replaced by `name`, in either connection-string form.
fn with_database(url: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (before_query, query) = match rest.find('?') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = before_query.split('/').next().unwrap_or_default();
            return format!("{scheme}{authority}/{name}{query}");
        }
    }
    // key=value form: a later key overrides an earlier one.
    format!("{url} dbname={name}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "x"),
            "postgres://u@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/postgres?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:1?application_name=a", "x"),
            "postgres://h:1/x?application_name=a"
        );
        assert_eq!(
            with_database("host=h user=u dbname=postgres", "x"),
            "host=h user=u dbname=postgres dbname=x"
        );
    }
}
