//! Parameters for hand-written statements, numbered for PostgreSQL and anonymous for SQLite.
//!
//! SQLite looks a named or numbered parameter (`$7`, `?7`) up by walking the statement's list of
//! names, and sqlx asks for every parameter's name when it binds: binding a statement with n of
//! them costs n²/2 steps. A batch of 256 results has 2,048 parameters, and that lookup was 7 % of
//! the SQLite writer thread's time (`perf`, BENCHMARKS.md). Anonymous `?` parameters are not in
//! that list and bind in the order they appear in the text, so a statement built with [`Params`]
//! must ask for its placeholders in that order, and ask again for a value it uses twice.
//!
//! Rows to insert go to PostgreSQL as one JSON parameter (see [`Params::table`]), written here by
//! hand: sea-query's PostgreSQL arrays (the other way to bind many rows as a few parameters)
//! cannot carry NULL elements, and several of our columns are nullable.

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

    /// A table of these rows to insert, written after `INSERT INTO t (…)`; its columns are
    /// `column1`…`columnN` on both databases.
    ///
    /// On SQLite it is a `VALUES` list, one placeholder a value, in order. On PostgreSQL it is one
    /// parameter, the rows as JSON, read by `json_to_recordset`: whatever the number of rows, the
    /// statement's text is the same and it has one parameter. sqlx keeps every distinct text
    /// prepared on each connection with a description of each parameter, and a `VALUES` list
    /// makes a text per row count with up to thousands of parameters: under a deep backlog those
    /// took tens of MB of the server's memory (BENCHMARKS.md). A row set with a value this cannot
    /// put in JSON (none of ours) falls back to the `VALUES` list.
    pub fn table<const N: usize>(&mut self, rows: impl IntoIterator<Item = [Value; N]>) -> String {
        if self.backend != DatabaseBackend::Postgres {
            return self.values(rows);
        }
        let rows: Vec<[Value; N]> = rows.into_iter().collect();
        if let Some((json, types)) = json_rows(&rows) {
            let param = self.push(json);
            let columns = types
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("column{} {ty}", i + 1))
                .collect::<Vec<_>>()
                .join(", ");
            return format!("SELECT * FROM json_to_recordset({param}::json) AS r({columns})");
        }
        self.values(rows)
    }

    /// A `VALUES` list of these rows on both databases, one placeholder a value, in order; its
    /// columns are `column1`…`columnN`. For a table that a statement joins on: PostgreSQL plans
    /// a `VALUES` list from its real length, but guesses 100 rows for `json_to_recordset`, and
    /// with that guess the result UPDATE's join took twice PostgreSQL's CPU per delivery
    /// (BENCHMARKS.md).
    pub fn values<const N: usize>(&mut self, rows: impl IntoIterator<Item = [Value; N]>) -> String {
        let list = rows
            .into_iter()
            .map(|row| format!("({})", self.list(row)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("VALUES {list}")
    }

    pub fn statement(self, sql: impl Into<String>) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// The rows as a JSON array of objects keyed `column1`…, and each column's PostgreSQL type, taken
/// from the first row (a sea-query value has its type even when it is NULL). None when there are
/// no rows, or a value is of a type not handled here.
fn json_rows<const N: usize>(rows: &[[Value; N]]) -> Option<(String, [&'static str; N])> {
    use std::fmt::Write;
    let first = rows.first()?;
    let mut types = [""; N];
    for (ty, v) in types.iter_mut().zip(first) {
        *ty = pg_type(v)?;
    }
    let mut json = String::with_capacity(rows.len() * N * 16);
    json.push('[');
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            json.push(',');
        }
        json.push('{');
        for (i, v) in row.iter().enumerate() {
            if pg_type(v)? != types[i] {
                return None;
            }
            if i > 0 {
                json.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(json, "\"column{}\":", i + 1);
            push_json(&mut json, v);
        }
        json.push('}');
    }
    json.push(']');
    Some((json, types))
}

/// The PostgreSQL type of a value this can write as JSON. Not a non-finite float: JSON has no NaN
/// or infinity, and such a row set goes as a `VALUES` list instead.
fn pg_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::BigInt(_) => "bigint",
        Value::Double(Some(f)) if !f.is_finite() => return None,
        Value::Double(_) => "double precision",
        Value::String(_) => "text",
        Value::ChronoDateTimeUtc(_) => "timestamptz",
        _ => return None,
    })
}

/// One value as JSON, for a type [`pg_type`] names.
fn push_json(json: &mut String, v: &Value) {
    use std::fmt::Write;
    let _ = match v {
        Value::Bool(Some(b)) => write!(json, "{b}"),
        Value::Int(Some(n)) => write!(json, "{n}"),
        Value::BigInt(Some(n)) => write!(json, "{n}"),
        Value::Double(Some(f)) => write!(json, "{f}"),
        Value::String(Some(s)) => {
            // Serialising a string cannot fail.
            json.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "null".into()));
            Ok(())
        }
        // Microseconds, as both databases keep them (`store::now`).
        Value::ChronoDateTimeUtc(Some(t)) => write!(
            json,
            "\"{}\"",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        _ => {
            json.push_str("null");
            Ok(())
        }
    };
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
    use chrono::{TimeZone, Utc};

    #[test]
    fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let mut pg = Params::new(DatabaseBackend::Postgres);
        assert_eq!(pg.push(1), "$1");
        assert_eq!(pg.list(["a", "b"]), "$2, $3");
        let mut lite = Params::new(DatabaseBackend::Sqlite);
        assert_eq!(lite.push(1), "?");
        assert_eq!(lite.list(["a", "b"]), "?, ?");
        assert_eq!(
            lite.table([
                [Value::from(1), Value::from(2)],
                [Value::from(3), Value::from(4)]
            ]),
            "VALUES (?, ?), (?, ?)"
        );
        assert_eq!(
            lite.statement("SELECT ?").values.map(|v| v.0.len()),
            Some(7)
        );
    }

    #[test]
    fn a_postgres_table_is_one_json_parameter_whatever_the_number_of_rows() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 14, 30, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let row = |id: &str, n: Option<i32>| -> [Value; 4] {
            [id.into(), n.into(), true.into(), at.into()]
        };
        let text = |rows: Vec<[Value; 4]>| {
            let mut p = Params::new(DatabaseBackend::Postgres);
            p.push("before");
            let table = p.table(rows);
            (table, p.statement("").values.unwrap().0)
        };
        let (one, _) = text(vec![row("a", Some(1))]);
        let (many, values) = text(vec![row("a\"b", Some(1)), row("c", None)]);
        assert_eq!(one, many, "the text does not depend on the number of rows");
        assert_eq!(
            many,
            "SELECT * FROM json_to_recordset($2::json) AS r(column1 text, column2 integer, \
             column3 boolean, column4 timestamptz)"
        );
        assert_eq!(values.len(), 2);
        let Value::String(Some(json)) = &values[1] else {
            panic!("the rows go as one JSON text: {values:?}");
        };
        let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"column1": "a\"b", "column2": 1, "column3": true,
                 "column4": "2026-12-01T14:30:00.123456Z"},
                {"column1": "c", "column2": null, "column3": true,
                 "column4": "2026-12-01T14:30:00.123456Z"},
            ])
        );
    }

    #[test]
    fn a_value_json_cannot_carry_falls_back_to_a_values_list() {
        let mut p = Params::new(DatabaseBackend::Postgres);
        let table = p.table([[Value::from(vec![1u8, 2])]]);
        assert_eq!(table, "VALUES ($1)");
        let table = p.table([[Value::from(1.5)], [Value::from(f64::NAN)]]);
        assert_eq!(table, "VALUES ($2), ($3)");
    }
}
