//! A throw-away PostgreSQL database per test, on the server `OPENVGW_TEST_PG_URL` names (`scripts/test` starts
//! one). Without it the PostgreSQL variants are skipped with a reason, except under `CI=true`, where the test
//! command provides a server and its absence is a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::Store;

pub(crate) const ENV: &str = "OPENVGW_TEST_PG_URL";

/// `url` with its database (the path) replaced by `db`.
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{authority}/{db}{query}")
}

pub(crate) struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub fn create() -> Option<TestDb> {
        let Ok(admin) = std::env::var(ENV) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{ENV} is not set under CI=true: scripts/test starts a PostgreSQL server for these tests"
            );
            eprintln!("skipped: {ENV} is not set (no PostgreSQL server to test against)");
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("ovgw_t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test server");
        client.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
        let url = with_database(&admin, &name);
        Some(TestDb { admin, name, url })
    }

    pub fn store(&self) -> Store {
        Store::open_postgres(&self.url).expect("open the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[test]
fn urls_get_another_database() {
    assert_eq!(with_database("postgres://u@h:5/db?x=1", "t1"), "postgres://u@h:5/t1?x=1");
    assert_eq!(with_database("postgres://u@h:5", "t1"), "postgres://u@h:5/t1");
}
