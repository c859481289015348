// Herald's GraphQL playground: GraphiQL (vendored under /assets/vendor/) with the API token
// taken from the browser session. The token lives in sessionStorage under `herald.token`, the
// key the console's sign-in uses too, so signing in on either page serves both; it is never
// written to localStorage (GraphiQL's header persistence stays off) nor shown in the page.
'use strict';

(function () {
  const TOKEN_KEY = 'herald.token';
  const httpUrl = new URL('/graphql', location.href).toString();
  const wsUrl = httpUrl.replace(/^http/, 'ws') + '/ws';

  const signIn = document.getElementById('sign-in');
  const form = document.getElementById('sign-in-form');
  const input = document.getElementById('token');
  const error = document.getElementById('sign-in-error');
  const editor = document.getElementById('graphiql');
  const who = document.getElementById('who');
  const signOut = document.getElementById('sign-out');

  // The bare token; a `Bearer ` prefix pasted along with it is dropped.
  const bare = (token) => (token || '').trim().replace(/^Bearer\s+/i, '');
  const storedToken = () => bare(sessionStorage.getItem(TOKEN_KEY));

  // Who a token belongs to, or why it was refused: the same query a person would run first.
  async function viewer(token) {
    let response;
    try {
      response = await fetch(httpUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
        body: JSON.stringify({ query: '{ viewer { tokenName role } }' }),
      });
    } catch (e) {
      return { error: 'Herald did not answer (' + e.message + ').', refused: false };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      // Not JSON: the status says enough.
    }
    const message = body && body.errors && body.errors.length ? body.errors[0].message : null;
    if (response.ok && body && body.data && body.data.viewer) return { viewer: body.data.viewer };
    return {
      error: 'That token was refused' + (message ? ': ' + message : ' (HTTP ' + response.status + ')') + '.',
      refused: response.status === 401 || response.status === 403,
    };
  }

  function showSignIn(message) {
    editor.hidden = true;
    who.hidden = true;
    signOut.hidden = true;
    signIn.hidden = false;
    error.textContent = message || '';
    input.focus();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = bare(input.value);
    if (!token) {
      error.textContent = 'Paste an API token first.';
      return;
    }
    error.textContent = 'Checking the token…';
    const result = await viewer(token);
    if (result.error) {
      error.textContent = result.error;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = '';
    start(token, result.viewer);
  });

  signOut.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    // A fresh page drops GraphiQL, its WebSocket and every copy of the token in memory.
    location.reload();
  });

  // One WebSocket per set of headers: browsers cannot set headers on a WebSocket, so they travel
  // in the connection_init payload, where Herald reads `Authorization`. Headers typed into the
  // Headers pane (another token, say) open a new socket.
  let socket = null;
  let socketKey = null;
  function wsClientFor(headers) {
    const key = JSON.stringify(headers);
    if (!socket || key !== socketKey) {
      if (socket) socket.dispose();
      socketKey = key;
      socket = graphqlWs.createClient({ url: wsUrl, lazy: true, connectionParams: headers });
    }
    return socket;
  }

  const defaultQuery = `# Herald's GraphQL API. Your token is sent with every request (it is not
# shown in the Headers pane; headers you add there are sent too, and override it).
# The Docs button (top left) browses the schema; Ctrl-Space completes.
{
  viewer { tokenName role }
  destinations(first: 10) {
    totalCount
    edges { node { id displayName url enabled } }
  }
}

# Live delivery updates, e.g. while sending a test alert from the console:
# subscription { deliveryUpdated { id state statusCode } }
`;

  function start(token, me) {
    signIn.hidden = true;
    who.textContent = me.tokenName + ' (' + me.role + ')';
    who.hidden = false;
    signOut.hidden = false;
    editor.hidden = false;

    const fetcher = (params, options) => {
      const headers = Object.assign(
        { Authorization: 'Bearer ' + token },
        (options && options.headers) || {},
      );
      return GraphiQL.createFetcher({ url: httpUrl, headers, wsClient: wsClientFor(headers) })(params, options);
    };

    ReactDOM.createRoot(editor).render(
      React.createElement(
        GraphiQL,
        {
          fetcher,
          defaultQuery,
          isHeadersEditorEnabled: true,
          // Headers (and so any token typed into the pane) stay out of localStorage.
          shouldPersistHeaders: false,
        },
        React.createElement(GraphiQL.Logo, null, 'Herald'),
      ),
    );
  }

  const token = storedToken();
  if (!token) {
    showSignIn();
    return;
  }
  // A token from an earlier sign-in (here or in the console): check it is still good, so a
  // revoked one asks again instead of failing every query.
  viewer(token).then((result) => {
    if (result.error) {
      // Forget a refused token; keep one that could not be checked (Herald restarting, say).
      if (result.refused) sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(result.error + (result.refused ? ' Sign in again.' : ' Reload to retry.'));
    } else {
      start(token, result.viewer);
    }
  });
})();
