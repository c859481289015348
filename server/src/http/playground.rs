//! The GraphiQL playground. Written here rather than taken from async-graphql's template so that
//! subscriptions authenticate: the WebSocket client reads the token from the Headers pane (GraphiQL
//! keeps it in localStorage) at connection time, which the stock page cannot do.

use axum::response::Html;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Herald · GraphQL playground</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading the playground… (it needs unpkg.com; the API itself is at POST /graphql)</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphql-ws@5/umd/graphql-ws.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const http = new URL('/graphql', location.href).toString();
    const ws = http.replace(/^http/, 'ws') + '/ws';
    // The Headers pane, as GraphiQL stores it; read at each (re)connection.
    const paneHeaders = () => {
      try { return JSON.parse(localStorage.getItem('graphiql:headers') || '{}'); } catch (e) { return {}; }
    };
    const fetcher = GraphiQL.createFetcher({
      url: http,
      wsClient: graphqlWs.createClient({ url: ws, lazy: true, connectionParams: paneHeaders }),
    });
    const defaultQuery = `# Put your API token in the Headers pane below:
#   {"Authorization": "Bearer hrld_..."}
{
  viewer { tokenName role }
  destinations(first: 10) { totalCount edges { node { id displayName url enabled } } }
}
`;
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultQuery,
        defaultHeaders: '{"Authorization": "Bearer "}',
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
      }),
    );
  </script>
</body>
</html>
"#;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}
