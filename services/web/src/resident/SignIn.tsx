// Sign-in. In production the province's app hands the identity over in the URL (session.ts)
// and this view only says where to come from. The form is the development identity
// provider's, visibly marked as such; when that provider is off its route answers 404 and
// the form gives way to "请从政务服务 App 进入".

import { useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import type { Msg } from "./i18n";
import { setIdentity } from "./session";
import { failureMsg, msg, useT } from "./ui";

const HOMES = [140500, 140522, 140100];
const LEVELS = [0, 1, 2, 3];

interface Props {
  /** Why the resident is here again (identity expired, …). */
  note: Msg | null;
  onSignedIn: () => void;
}

export function SignIn({ note, onSignedIn }: Props) {
  const t = useT();
  const [person, setPerson] = useState("R000123");
  const [home, setHome] = useState(String(HOMES[0]));
  const [level, setLevel] = useState("2");
  const [busy, setBusy] = useState(false);
  const [devOff, setDevOff] = useState(false);
  const [error, setError] = useState<Msg | null>(null);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (busy) return;
    const id = person.trim();
    if (!id) {
      setError(() => msg((tt) => tt.personRequired));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const r = await api.devSignIn(id, Number(home), Number(level));
      setIdentity(r.token, true);
      onSignedIn();
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 404) setDevOff(true);
      else setError(() => (e instanceof ApiFailure && !e.network ? msg((tt) => tt.signInFailed) : failureMsg(e)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin" aria-labelledby="signin-title">
      <h2 id="signin-title" class="view-title">
        {t.signInTitle}
      </h2>
      {note && <p class="notice">{note(t)}</p>}
      {devOff ? (
        <div class="enter-from-app">
          <p class="big">{t.enterFromApp}</p>
          <p class="muted">{t.enterFromAppHint}</p>
        </div>
      ) : (
        <form class="card form" data-testid="dev-signin-form" onSubmit={(ev) => void submit(ev)} noValidate>
          <p class="dev-badge" data-testid="dev-badge">
            {t.devBadge}
          </p>
          <p class="muted secondary">{t.signInIntro}</p>
          <label class="field">
            <span>{t.devPerson}</span>
            <input
              data-testid="dev-person"
              name="person_id"
              autocomplete="off"
              autocapitalize="characters"
              spellcheck={false}
              value={person}
              onInput={(ev) => setPerson((ev.currentTarget as HTMLInputElement).value)}
              required
            />
          </label>
          <label class="field">
            <span>{t.devHome}</span>
            <select data-testid="dev-home" name="home" value={home} onChange={(ev) => setHome((ev.currentTarget as HTMLSelectElement).value)}>
              {HOMES.map((h) => (
                <option key={h} value={String(h)}>
                  {t.homes[h]} ({h})
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t.devLevel}</span>
            <select data-testid="dev-level" name="real_name_level" value={level} onChange={(ev) => setLevel((ev.currentTarget as HTMLSelectElement).value)}>
              {LEVELS.map((l) => (
                <option key={l} value={String(l)}>
                  {t.level(l)}
                </option>
              ))}
            </select>
          </label>
          {error && <p class="form-error">{error(t)}</p>}
          <button type="submit" class="primary" data-testid="dev-signin-submit" disabled={busy}>
            {busy ? t.signingIn : t.devSubmit}
          </button>
        </form>
      )}
    </section>
  );
}
