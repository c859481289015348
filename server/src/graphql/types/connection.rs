use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use crate::graphql::ApiError;
use crate::store::Page;

pub const DEFAULT_PAGE: i32 = 25;
pub const MAX_PAGE: i32 = 100;

/// Extra fields on every connection.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items match the filters, over all pages.
    pub total_count: u64,
}

/// `first` and `after`, checked.
pub struct ConnectionArgs {
    pub first: u64,
    pub after: Option<String>,
}

impl ConnectionArgs {
    pub fn new(first: Option<i32>, after: Option<String>) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("first must be between 0 and {MAX_PAGE}, got {first}"),
            ));
        }
        Ok(ConnectionArgs {
            first: first as u64,
            after: after.filter(|a| !a.is_empty()),
        })
    }
}

/// A store page as a Relay connection: each item's cursor from `cursor`, its node from `node`.
pub fn connection<T, N: OutputType>(
    page: Page<T>,
    args: &ConnectionArgs,
    cursor: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Connection<String, N, TotalCount> {
    let mut conn = Connection::with_additional_fields(
        args.after.is_some(),
        page.has_next_page,
        TotalCount {
            total_count: page.total_count,
        },
    );
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(cursor(&item), node(item))),
    );
    conn
}
