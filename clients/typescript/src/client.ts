// A configured client for the generated SDK: auth, base URL, and problems thrown as SkeinError.
import { type Client, createClient, createConfig } from './generated/client/index.js';
import type { ClientOptions } from './generated/types.gen.js';
import { SkeinError, isProblem } from './errors.js';

export interface SkeinClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (or `''` in a page the server itself serves). */
  baseUrl: string;
  /** A session token (from `registerAccount`/`logIn`), sent as `Authorization: Bearer`. */
  token?: string;
  /**
   * For browsers signed in with the session cookie instead of a token: the `csrf_token` of
   * the login response, sent as `X-CSRF-Token` on writes.
   */
  csrfToken?: string;
  /** `include` sends the session cookie cross-origin; the default `same-origin` suits the web app. */
  credentials?: RequestCredentials;
  fetch?: typeof fetch;
}

/**
 * A client to pass as `{ client }` to every generated call. Calls resolve to `{ data }` and
 * throw a {@link SkeinError} for problem responses.
 */
export function createSkeinClient(options: SkeinClientOptions): Client {
  const client = createClient(
    createConfig<ClientOptions>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      throwOnError: true,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Called once per security scheme the operation accepts; undefined skips the scheme.
      auth: (scheme) => {
        if (scheme.scheme === 'bearer') return options.token;
        if (scheme.name === 'x-csrf-token') return options.csrfToken;
        return undefined;
      },
    }),
  );
  client.interceptors.error.use((error, response) =>
    response && isProblem(error) ? new SkeinError(response.status, error) : error,
  );
  return client;
}
