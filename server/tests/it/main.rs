//! Integration tests: the real server on an ephemeral port, spoken to over HTTP, on SQLite and on
//! a throwaway PostgreSQL 15. One test binary, so the suite links once.

mod app;
mod auth;
mod destinations;
mod schema;
mod validation;

/// Declares each listed `async fn(Backend)` as two tests, `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(herald_testkit::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(herald_testkit::Backend::Postgres).await
                }
            )+
        }
    };
}
