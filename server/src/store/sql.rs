//! Parameters for hand-written statements, numbered for PostgreSQL and anonymous for SQLite.
//!
//! SQLite looks a named or numbered parameter (`$7`, `?7`) up by walking the statement's list of
//! names, and sqlx asks for every parameter's name when it binds: binding a statement with n of
//! them costs n²/2 steps. A batch of 256 results has 2,048 parameters, and that lookup was 7 % of
//! the SQLite writer thread's time (`perf`, BENCHMARKS.md). Anonymous `?` parameters are not in
//! that list and bind in the order they appear in the text, so a statement built with [`Params`]
//! must ask for its placeholders in that order, and ask again for a value it uses twice.

use sea_orm::{DatabaseBackend, Statement, Value};

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
