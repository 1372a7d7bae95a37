// The console's frame: the session (probe on load, sign-in, sign-out, back to sign-in when
// the server says it is gone), the header with the officer and the navigation, and the
// screen of the address.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { Component, type ComponentChildren } from "preact";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import { Audit } from "./Audit";
import { Batch } from "./Batch";
import { dateTime } from "./format";
import { TEXTS, TextsContext, type Lang, type Texts, useT } from "./i18n";
import { Ops } from "./Ops";
import { Overview } from "./Overview";
import { Redemption } from "./Redemption";
import { Review } from "./Review";
import { href, replaceHash, sectionOf, useRoute, type Route, type Section } from "./router";
import { Run } from "./Run";
import { Settlement } from "./Settlement";
import { SignIn, type SignInNote } from "./SignIn";
import type { Session } from "./types";
import { ScreenError, placeRole } from "./ui";

type Phase =
  | { kind: "checking" }
  | { kind: "signedOut"; note: SignInNote | null }
  | { kind: "signedIn"; session: Session };

const LANG_KEY = "console-lang";

export function savedLang(): Lang {
  try {
    return localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
  } catch {
    return "zh";
  }
}

/** Puts the language on the document; called before the first render and by the toggle. */
export function applyDocument(lang: Lang): void {
  document.documentElement.lang = TEXTS[lang].htmlLang;
  document.title = TEXTS[lang].appTitle;
}

const SECTIONS: Section[] = ["overview", "settlement", "review", "ops", "audit"];

export function App() {
  const [lang, setLang] = useState<Lang>(savedLang);
  const [phase, setPhase] = useState<Phase>({ kind: "checking" });
  const route = useRoute();
  const t: Texts = TEXTS[lang];

  const enter = useCallback((session: Session) => {
    api.adoptSession(session);
    setPhase({ kind: "signedIn", session });
  }, []);

  const leave = useCallback((note: SignInNote | null) => {
    api.adoptSession(null);
    setPhase((p) => (p.kind === "signedIn" || p.kind === "checking" ? { kind: "signedOut", note } : p));
  }, []);

  useEffect(() => {
    api.setSessionLostHandler((code) => leave(code === "SESSION_EXPIRED" ? "expired" : "ended"));
    api.currentSession(false).then(enter, (e: unknown) =>
      leave(e instanceof ApiFailure && e.code === "SESSION_EXPIRED" ? "expired" : null),
    );
  }, []);

  const session = phase.kind === "signedIn" ? phase.session : null;

  // A move to another screen starts at its top, with the focus on the page (a screen
  // reader reads the new screen; the link that was clicked may be gone).
  const firstRoute = useRef(true);
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    window.scrollTo(0, 0);
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [route]);

  // Each move to another screen asks for the session again: it keeps the expiry shown
  // current (sessions end when idle) and notices an ended session before a screen loads.
  useEffect(() => {
    if (!session) return;
    api.currentSession(true).then(
      (s) => s.expires_at !== session.expires_at && enter(s),
      () => undefined,
    );
  }, [route, session?.officer.name]);

  // When the shown expiry passes, look: the page goes back to sign-in rather than failing
  // on the next click.
  useEffect(() => {
    if (!session) return;
    const due = Date.parse(session.expires_at) - Date.now() + 1_000;
    if (!Number.isFinite(due)) return;
    const timer = setTimeout(() => void api.currentSession(true).then(enter, () => undefined), Math.max(due, 1_000));
    return () => clearTimeout(timer);
  }, [session?.expires_at]);

  const toggleLang = () => {
    const next: Lang = lang === "zh" ? "en" : "zh";
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch {
      // not essential
    }
    applyDocument(next);
    setLang(next);
  };

  const signOut = async () => {
    try {
      await api.signOut();
    } catch {
      // Signed out locally whatever the server said: the cookie is HttpOnly, and a session
      // the server still holds ends by itself when idle.
    }
    leave("signedOut");
    // Whoever signs in next starts at the overview (an expired session keeps its address).
    replaceHash(href.overview());
  };

  const signedIn = (s: Session) => {
    enter(s);
    if (sectionOf(route) === null || route.screen === "unknown") replaceHash(href.overview());
  };

  const langButton = (
    <button type="button" class="btn btn-ghost btn-small" lang={t.langToggleLang} onClick={toggleLang} aria-label={t.langToggleLabel}>
      {t.langToggle}
    </button>
  );

  return (
    <TextsContext.Provider value={t}>
      <header class="topbar">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            财
          </span>
          <span class="app-title">{t.appTitle}</span>
          {session?.method === "dev_idp" && (
            <span class="dev-badge" data-testid="dev-badge">
              {t.devBadge}
            </span>
          )}
        </div>
        <div class="officer">
          {session && (
            <>
              <div class="officer-who">
                <span class="officer-name" data-testid="officer-name">
                  {session.officer.name}
                </span>
                <span class="officer-place" data-testid="officer-place">
                  {placeRole(session.officer, t)}
                </span>
              </div>
              <span class="officer-expiry" data-testid="session-expiry">
                {t.sessionUntil(dateTime(session.expires_at))}
              </span>
            </>
          )}
          {langButton}
          {session && (
            <button type="button" class="btn btn-ghost btn-small" data-testid="sign-out" onClick={() => void signOut()}>
              {t.signOut}
            </button>
          )}
        </div>
      </header>
      {session && (
        <nav class="mainnav" aria-label={t.navLabel}>
          <ul>
            {SECTIONS.map((s) => (
              <li key={s}>
                <a
                  href={`#/${s}`}
                  data-testid={`nav-${s}`}
                  aria-current={sectionOf(route) === s ? "page" : undefined}
                >
                  {t.nav[s]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      )}
      <main id="main" class="page" tabIndex={-1}>
        {phase.kind === "checking" ? (
          <p class="loading" role="status">
            {t.checkingSession}
          </p>
        ) : phase.kind === "signedOut" ? (
          <SignIn note={phase.note} onSignedIn={signedIn} />
        ) : (
          <Boundary key={`${route.screen}:${"id" in route ? route.id : ""}`}>
            <Screen route={route} session={phase.session} />
          </Boundary>
        )}
      </main>
    </TextsContext.Provider>
  );
}

function Screen(props: { route: Route; session: Session }) {
  const { route, session } = props;
  const officer = session.officer;
  switch (route.screen) {
    case "overview":
      return <Overview />;
    case "settlement":
      return <Settlement officer={officer} period={route.period} />;
    case "run":
      return <Run key={route.id} id={route.id} />;
    case "batch":
      return <Batch key={route.id} id={route.id} />;
    case "review":
      return <Review period={route.period} />;
    case "redemption":
      return <Redemption key={route.id} id={route.id} />;
    case "ops":
      return <Ops officer={officer} />;
    case "audit":
      return <Audit />;
    default:
      return <Unknown />;
  }
}

/** A screen that failed to render shows an error box instead of leaving the page blank. */
class Boundary extends Component<{ children: ComponentChildren }, { error: unknown }> {
  override state = { error: null as unknown };

  override componentDidCatch(error: unknown) {
    this.setState({ error });
  }

  override render() {
    return this.state.error ? <ScreenError error={this.state.error} /> : this.props.children;
  }
}

function Unknown() {
  const t = useT();
  return (
    <section data-testid="screen-error" class="error-box" role="alert">
      <p class="error-text">{t.unknownRoute}</p>
      <p>
        <a href={href.overview()}>{t.nav.overview}</a>
      </p>
    </section>
  );
}
