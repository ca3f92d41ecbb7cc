"use strict";
// The /v1 client: the bearer token (from the URL fragment or localStorage) and requests with clear errors.
window.NasClient = (() => {
  const API = "/v1";
  const TOKEN_KEY = "nas.token";

  /** A failed request; `status` is the HTTP status. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /**
   * The token a link carries in `#token=...[&job=ID]` (what `make run` prints), dropped from the address
   * bar, where it would be bookmarked or shared by accident; null when the link has none.
   */
  function linkToken() {
    const hash = location.hash.replace(/^#/, "");
    if (!hash.includes("token=")) return null;
    const params = new URLSearchParams(hash.replace(/^\/?\??/, ""));
    const token = params.get("token");
    const job = params.get("job");
    history.replaceState(null, "", `${location.pathname}#/${job ? `jobs/${encodeURIComponent(job)}` : ""}`);
    return token || null;
  }

  /**
   * The token to use: `current` (or the saved one), unless a link carries another. A link never switches
   * a token silently: with a token already known the user is asked, and on "no" the known one is kept.
   * Returns `{ token, notice }`; `notice` says what happened to a link's token that was not used.
   */
  function readToken(current = null) {
    const known = current || localStorage.getItem(TOKEN_KEY);
    const offered = linkToken();
    if (!offered || offered === known) return { token: known, notice: null };
    const question =
      "This link carries a different API token than the one this browser uses.\n" +
      "Switch to the link's token? (Cancel keeps your current token.)";
    if (!known || window.confirm(question)) {
      saveToken(offered);
      return { token: offered, notice: null };
    }
    return { token: known, notice: "The link's token was ignored: you are still signed in with your own token." };
  }

  function saveToken(token) {
    localStorage.setItem(TOKEN_KEY, token);
  }

  function forgetToken() {
    localStorage.removeItem(TOKEN_KEY);
  }

  /**
   * `path` is relative to /v1 unless it is already absolute (an artifact's download_url).
   * Resolves to parsed JSON, or to a Blob when `accept` is not JSON; rejects with ApiError.
   */
  async function request(path, { token, method = "GET", accept = "application/json" } = {}) {
    const url = /^https?:\/\//.test(path) || path.startsWith(`${API}/`) ? path : `${API}${path}`;
    const res = await fetch(url, { method, headers: { Authorization: `Bearer ${token}`, Accept: accept } });
    if (res.status === 401) {
      throw new ApiError(401, "The token was rejected (revoked or mistyped); paste a valid one.");
    }
    if (!res.ok) {
      let detail = res.statusText;
      try {
        const body = await res.json();
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
      } catch (_) {
        // not JSON: the status text will do
      }
      throw new ApiError(res.status, `${method} ${url}: ${res.status} ${detail}`);
    }
    return accept === "application/json" ? res.json() : res.blob();
  }

  return { ApiError, readToken, saveToken, forgetToken, request };
})();
