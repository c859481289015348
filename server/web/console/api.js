// GraphQL over fetch to Herald's own /graphql, with the API token from this browser session.
// Every action the console offers goes through `gql`, so each is an operation of the public
// schema that an automation can run too.

// The same key as the playground's, so signing in once serves both pages. sessionStorage, not
// localStorage: the token is gone when the browser session ends.
const TOKEN_KEY = 'herald.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A GraphQL or transport error, with the server's `extensions.code` and `extensions.field`. */
export class ApiError extends Error {
  constructor(message, { code = '', field = null, status = 0 } = {}) {
    super(message);
    this.code = code;
    this.field = field;
    this.status = status;
  }
}

// Called when the server no longer takes the token (revoked, or the database was replaced).
let onUnauthenticated = () => {};
export function whenUnauthenticated(f) {
  onUnauthenticated = f;
}

/** The message a person should read for an error code. */
function explain(code, message) {
  switch (code) {
    case 'SERVICE_UNAVAILABLE':
      return 'The database is unavailable, try again in a moment.';
    case 'FORBIDDEN':
      return 'Only an ADMIN token may do this; you are signed in with a VIEWER token.';
    case 'INTERNAL_SERVER_ERROR':
      return 'Herald had an internal error; its log has the details.';
    default:
      return message;
  }
}

/**
 * Runs one GraphQL operation with `tokenOverride` or the session's token; returns `data`, or
 * throws an ApiError for the first error. The token goes in the Authorization header only.
 */
export async function gql(query, variables = {}, tokenOverride = null) {
  const bearer = tokenOverride ?? token.get() ?? '';
  let resp;
  try {
    resp = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        Authorization: `Bearer ${bearer}`,
      },
      body: JSON.stringify({ query, variables }),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(`Herald could not be reached (${e.message}). Is the server running?`, {
      code: 'NETWORK',
    });
  }
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(`Herald answered HTTP ${resp.status} without a GraphQL body.`, {
      code: 'HTTP',
      status: resp.status,
    });
  }
  const first = body.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? '';
    // Argument errors name a nested input field as `input.url`; the form's fields are `url`.
    const field = first.extensions?.field?.replace(/^input\./, '') ?? null;
    if (code === 'UNAUTHENTICATED' && !tokenOverride) onUnauthenticated(first.message);
    throw new ApiError(explain(code, first.message), { code, field, status: resp.status });
  }
  return body.data;
}
