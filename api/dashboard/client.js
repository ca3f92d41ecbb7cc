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
   * The token from `#token=...[&job=ID]` (what `make run` prints; saved for later, then dropped from the
   * address bar), else the saved one; null when there is none.
   */
  function readToken() {
    const hash = location.hash.replace(/^#/, "");
    if (hash.includes("token=")) {
      const params = new URLSearchParams(hash.replace(/^\/?\??/, ""));
      const token = params.get("token");
      if (token) {
        saveToken(token);
        const job = params.get("job");
        // Not left in the address bar, where it would be bookmarked or shared by accident.
        history.replaceState(null, "", `${location.pathname}#/${job ? `jobs/${encodeURIComponent(job)}` : ""}`);
        return token;
      }
    }
    return localStorage.getItem(TOKEN_KEY);
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
