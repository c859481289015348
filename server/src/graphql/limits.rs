//! Limits on what one GraphQL request may ask for, each refused with an error that names the
//! limit and its value (`extensions.code = "LIMIT_EXCEEDED"`, `extensions.limit`,
//! `extensions.max`, `extensions.actual`). async-graphql's own depth and complexity limits answer
//! "Query is nested too deep." without numbers, so the values it computes during validation are
//! checked here instead. Lists count once per item a page may hold (`page_cost`), so nested
//! pages cannot multiply the rows read behind a small-looking query.
//!
//! The limits are generous for every shape of the API and for the introspection queries of
//! GraphiQL and graphql-js (`getIntrospectionQuery`, depth 13 with all options), which tests
//! check; they are fatal for documents built to exhaust the server.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Value, Variables};

/// Fields nested in fields, fragments expanded.
pub const MAX_DEPTH: usize = 16;
/// One per field selected, fragments expanded, lists once per item they may hold (see `page_cost`):
/// a page of 100 deliveries with every field of their attempts fits (a test checks).
pub const MAX_COMPLEXITY: usize = 20_000;
/// Aliased fields written in the document.
pub const MAX_ALIASES: usize = 64;
/// The query document's length in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The complexity of a paged list: what one item costs, times the items a page may hold. Without
/// it, complexity counts a field once however many rows it returns, and three nested pages of 100
/// (a million rows) would cost as little as three fields.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    use super::types::connection::{DEFAULT_PAGE, MAX_PAGE};
    let items = first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    1 + items.saturating_mul(child_complexity)
}

/// The complexity of an unpaged list with a known bound (a delivery's attempts: at most 11).
pub fn list_cost(bound: usize, child_complexity: usize) -> usize {
    1 + bound.saturating_mul(child_complexity)
}

fn exceeded(limit: &str, what: &str, max: usize, actual: usize) -> ServerError {
    let mut e = ServerError::new(
        format!("the query's {what} is {actual}, over the limit of {max}"),
        None,
    );
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "LIMIT_EXCEEDED");
    ext.set("limit", limit);
    ext.set("max", Value::from(max as u64));
    ext.set("actual", Value::from(actual as u64));
    e.extensions = Some(ext);
    e
}

pub(super) struct QueryLimits;

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExt)
    }
}

struct QueryLimitsExt;

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimitsExt {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Before parsing: a huge document costs its parse.
        let size = request.query.len();
        if size > MAX_DOCUMENT_BYTES {
            return Err(exceeded(
                "documentSize",
                "document size in bytes",
                MAX_DOCUMENT_BYTES,
                size,
            ));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&doc);
        if aliases > MAX_ALIASES {
            return Err(exceeded(
                "aliases",
                "number of aliases",
                MAX_ALIASES,
                aliases,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.depth > MAX_DEPTH {
            return Err(vec![exceeded("depth", "depth", MAX_DEPTH, result.depth)]);
        }
        if result.complexity > MAX_COMPLEXITY {
            return Err(vec![exceeded(
                "complexity",
                "complexity",
                MAX_COMPLEXITY,
                result.complexity,
            )]);
        }
        Ok(result)
    }
}

/// Aliases as written: in every operation and every fragment definition, once each.
fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .chain(
            doc.fragments
                .values()
                .map(|f| walk(&f.node.selection_set.node)),
        )
        .sum()
}
