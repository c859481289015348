//! The GraphiQL playground. Written here rather than taken from async-graphql's template so that
//! subscriptions authenticate: the WebSocket client is given the Headers pane's token, which the
//! stock page cannot do. The page loads GraphiQL from unpkg.com in the browser.

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
    // Subscriptions authenticate with the Headers pane too: GraphiQL hands each operation the
    // pane's headers, and they go into the WebSocket's connection_init payload. A new token in
    // the pane opens a new socket.
    let socket = null, socketHeaders = null;
    const wsClientFor = (headers) => {
      const key = JSON.stringify(headers || {});
      if (!socket || key !== socketHeaders) {
        if (socket) socket.dispose();
        socketHeaders = key;
        socket = graphqlWs.createClient({ url: ws, lazy: true, connectionParams: headers || {} });
      }
      return socket;
    };
    const fetcher = (params, opts) =>
      GraphiQL.createFetcher({ url: http, wsClient: wsClientFor(opts && opts.headers) })(params, opts);
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
