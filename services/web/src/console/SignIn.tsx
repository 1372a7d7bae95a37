// Sign-in: an administrator's API key, or (demo only, when the service's dev identity
// provider is on) one of the dev provider's officers. Both answer a Session; the key is
// sent once and never kept.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import { useT } from "./i18n";
import type { Officer, Session } from "./types";
import { errorText, placeRole } from "./ui";

/** Why the sign-in screen is shown again. */
export type SignInNote = "expired" | "ended" | "signedOut";

export function SignIn(props: { note: SignInNote | null; onSignedIn: (s: Session) => void }) {
  const t = useT();
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<{ text: string; code: string } | null>(null);
  const [officers, setOfficers] = useState<Officer[] | null>(null);
  const keyRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    keyRef.current?.focus();
    api.devOfficers().then(
      (r) => setOfficers(Array.isArray(r.officers) ? r.officers : null),
      () => setOfficers(null),
    );
  }, []);

  async function attempt(what: string, call: () => Promise<Session>) {
    if (busy) return;
    setBusy(what);
    setError(null);
    try {
      const session = await call();
      props.onSignedIn(session);
    } catch (e) {
      setBusy(null);
      setError({ text: errorText(e, t), code: e instanceof ApiFailure ? e.code : "ERROR" });
      if (what === "key") keyRef.current?.focus();
    }
  }

  const submitKey = (e: Event) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (trimmed === "") {
      setError({ text: t.apiKeyEmpty, code: "EMPTY" });
      keyRef.current?.focus();
      return;
    }
    void attempt("key", () => api.signIn(trimmed));
  };

  const note =
    props.note === "expired" ? t.sessionExpired : props.note === "ended" ? t.sessionEnded : props.note === "signedOut" ? t.signedOut : null;

  return (
    <div class="signin-wrap" data-testid="signin">
      <section class="panel signin" aria-labelledby="signin-title">
        <h1 id="signin-title">{t.signInTitle}</h1>
        {note && (
          <p class={props.note === "signedOut" ? "info-box" : "warn-box"} role="status" data-testid="signin-note">
            {note}
          </p>
        )}
        <p class="muted">{t.signInIntro}</p>
        <form noValidate onSubmit={submitKey}>
          <div class="field">
            <label for="signin-api-key">{t.apiKey}</label>
            <input
              id="signin-api-key"
              ref={keyRef}
              data-testid="signin-api-key"
              type="password"
              autoComplete="off"
              spellcheck={false}
              value={key}
              readOnly={busy !== null}
              aria-describedby="signin-api-key-hint"
              aria-invalid={error !== null && busy === null}
              onInput={(e) => setKey(e.currentTarget.value)}
            />
            <p id="signin-api-key-hint" class="hint">
              {t.apiKeyHint}
            </p>
          </div>
          <button type="submit" class="btn btn-primary btn-wide" data-testid="signin-submit" disabled={busy !== null} aria-busy={busy === "key"}>
            {busy === "key" ? t.signingIn : t.signInSubmit}
          </button>
        </form>
        <div aria-live="assertive">
          {error && (
            <p class="error-box" data-testid="signin-error" data-code={error.code}>
              {error.text}
            </p>
          )}
        </div>
      </section>
      {officers && officers.length > 0 && (
        <section class="panel dev-signin" aria-labelledby="dev-title" data-testid="dev-signin">
          <h2 id="dev-title">
            <span class="dev-badge">{t.devBadge}</span>
          </h2>
          <p class="muted small">{t.devIntro}</p>
          <ul class="dev-officers" aria-label={t.devOfficersLabel}>
            {officers.map((o) => (
              <li key={o.name}>
                <button
                  type="button"
                  class="btn btn-secondary dev-officer"
                  data-testid="dev-officer"
                  data-name={o.name}
                  disabled={busy !== null}
                  aria-busy={busy === o.name}
                  onClick={() => void attempt(o.name, () => api.devSignIn(o.name))}
                >
                  <span class="dev-place">{placeRole(o, t)}</span>{" "}
                  <span class="dev-name">{o.name}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
