//! Parameters for hand-written statements, numbered for PostgreSQL and anonymous for SQLite.
//!
//! SQLite looks a named or numbered parameter (`$7`, `?7`) up by walking the statement's list of
//! names, and sqlx asks for every parameter's name when it binds: binding a statement with n of
//! them costs n²/2 steps. A batch of 256 results has 2,048 parameters, and that lookup was 7 % of
//! the SQLite writer thread's time (`perf`, BENCHMARKS.md). Anonymous `?` parameters are not in
//! that list and bind in the order they appear in the text, so a statement built with [`Params`]
//! must ask for its placeholders in that order, and ask again for a value it uses twice.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, Value, Values};

/// The values of one statement, and the placeholder for each as it is added.
pub(crate) struct Params {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl Params {
    pub fn new(backend: DatabaseBackend) -> Self {
        Params {
            backend,
            values: Vec::new(),
        }
    }

    /// Adds a value and returns its placeholder, to be written into the SQL at this point of
    /// the text (SQLite binds anonymous parameters in the order they appear).
    pub fn push(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    /// A comma-separated placeholder for each value, in order.
    pub fn list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> String {
        values
            .into_iter()
            .map(|v| self.push(v))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(…), (…)` for a multi-row VALUES list, one placeholder a value, in order.
    pub fn rows<const N: usize>(&mut self, rows: impl IntoIterator<Item = [Value; N]>) -> String {
        rows.into_iter()
            .map(|row| format!("({})", self.list(row)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn statement(self, sql: impl Into<String>) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// Runs statements that return no rows, in order, in one round trip on SQLite.
///
/// Every statement on SQLite is a round trip to the connection's own thread and back to a tokio
/// worker, ~0.1 ms under load, and inside a write transaction that wait holds the one writer
/// (BENCHMARKS.md). sqlx runs a text of several statements one after the other and binds each
/// its anonymous parameters from one list, in the order of the text, so they go as one. On
/// PostgreSQL each is sent in turn: its extended protocol takes one statement per message.
///
/// Only small texts are joined (up to [`JOIN_VALUES_AT_MOST`] values in all). sqlx keeps each
/// distinct text prepared, and large batches (a group of 2,000 alerts) joined came in more shapes,
/// each prepared whole: the server's peak memory grew by half. Large batches have few statements
/// per row anyway.
pub(crate) async fn execute_all(
    conn: &impl ConnectionTrait,
    statements: Vec<Statement>,
) -> Result<(), DbErr> {
    let values: usize = statements
        .iter()
        .map(|s| s.values.as_ref().map_or(0, |v| v.0.len()))
        .sum();
    if conn.get_database_backend() != DatabaseBackend::Sqlite
        || statements.len() < 2
        || values > JOIN_VALUES_AT_MOST
    {
        for statement in statements {
            conn.execute_raw(statement).await?;
        }
        return Ok(());
    }
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    conn.execute_raw(Statement {
        sql,
        values: Some(Values(values)),
        db_backend: DatabaseBackend::Sqlite,
    })
    .await?;
    Ok(())
}

/// The most values [`execute_all`] sends as one text.
const JOIN_VALUES_AT_MOST: usize = 2_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let mut pg = Params::new(DatabaseBackend::Postgres);
        assert_eq!(pg.push(1), "$1");
        assert_eq!(pg.list(["a", "b"]), "$2, $3");
        assert_eq!(
            pg.rows([
                [Value::from(1), Value::from(2)],
                [Value::from(3), Value::from(4)]
            ]),
            "($4, $5), ($6, $7)"
        );
        let mut lite = Params::new(DatabaseBackend::Sqlite);
        assert_eq!(lite.push(1), "?");
        assert_eq!(lite.list(["a", "b"]), "?, ?");
        assert_eq!(
            lite.rows([
                [Value::from(1), Value::from(2)],
                [Value::from(3), Value::from(4)]
            ]),
            "(?, ?), (?, ?)"
        );
        assert_eq!(
            lite.statement("SELECT ?").values.map(|v| v.0.len()),
            Some(7)
        );
    }
}
