// The page's frame: header (title, 长辈模式, 中文/EN), the three views behind a tab bar, the
// message area (aria-live) and the way back to sign-in when the identity is refused.

import { useCallback, useEffect, useState } from "preact/hooks";
import * as api from "./api";
import { cacheVouchers, forgetAll, syncCodeKeys } from "./codes";
import { Campaigns } from "./Campaigns";
import { History } from "./History";
import { TEXTS, type Lang, type Msg, type Texts } from "./i18n";
import {
  adoptHandOff,
  clearIdentity,
  identity,
  isDevIdentity,
  saveElder,
  saveLang,
  savedElder,
  savedLang,
} from "./session";
import { SignIn } from "./SignIn";
import { TradeIn } from "./TradeIn";
import { TextsContext, type Toast } from "./ui";
import { Vouchers } from "./Vouchers";

type View = "campaigns" | "vouchers" | "tradein" | "history";

const TOAST_MS = 8_000;

function identityLostMsg(code: string): Msg {
  if (code === "IDENTITY_EXPIRED") return (t) => t.identityExpired;
  if (code === "IDENTITY_INVALID") return (t) => t.identityInvalid;
  return (t) => t.missingIdentity;
}

/**
 * Puts the language and elder mode on the document (`lang`, the title, `html.elder`). Called
 * before the first render and by the toggles themselves, not from an effect, so that no
 * frame shows the old setting.
 */
export function applyDocument(lang: Lang, elder: boolean): void {
  document.documentElement.lang = TEXTS[lang].htmlLang;
  document.title = TEXTS[lang].appTitle;
  document.documentElement.classList.toggle("elder", elder);
}

/** Brings the stored code keys up to date on an online start, before anyone opens 我的券. */
function warmCodeKeys(): void {
  if (!navigator.onLine) return;
  api.myVouchers(api.ONCE).then(
    (list) => {
      void cacheVouchers(list);
      void syncCodeKeys(list);
    },
    () => {},
  );
}

export function App() {
  const [lang, setLang] = useState<Lang>(savedLang);
  const [elder, setElder] = useState(savedElder);
  const [signedIn, setSignedIn] = useState(() => identity() !== null);
  const [dev, setDev] = useState(isDevIdentity);
  const [view, setView] = useState<View>("campaigns");
  const [justClaimed, setJustClaimed] = useState<string | null>(null);
  const [toast, setToast] = useState<Toast | null>(null);
  const [signInNote, setSignInNote] = useState<Msg | null>(null);
  const t: Texts = TEXTS[lang];

  const say = useCallback((msg: Msg) => setToast((prev) => ({ msg, n: (prev?.n ?? 0) + 1 })), []);

  useEffect(() => {
    if (!toast) return;
    const timer = setTimeout(() => setToast((cur) => (cur === toast ? null : cur)), TOAST_MS);
    return () => clearTimeout(timer);
  }, [toast]);

  useEffect(() => {
    api.setIdentityLostHandler((code) => {
      // Requests in flight when the identity was refused fail too: the first one speaks.
      if (identity() === null) return;
      clearIdentity();
      const msg = identityLostMsg(code);
      setSignInNote(() => msg);
      say(msg);
      setSignedIn(false);
      setDev(false);
    });
  }, [say]);

  useEffect(() => {
    if (signedIn) warmCodeKeys();
  }, [signedIn]);

  // A hand-off into an already open page (the province's app reusing its WebView).
  useEffect(() => {
    const onHash = () => {
      if (!adoptHandOff()) return;
      setSignInNote(null);
      setDev(false);
      setView("campaigns");
      setSignedIn(true);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const toggleLang = () => {
    const next: Lang = lang === "zh" ? "en" : "zh";
    saveLang(next);
    applyDocument(next, elder);
    setLang(next);
  };

  const toggleElder = () => {
    saveElder(!elder);
    applyDocument(lang, !elder);
    setElder(!elder);
  };

  const signedInNow = () => {
    setSignInNote(null);
    setDev(isDevIdentity());
    setView("campaigns");
    setJustClaimed(null);
    setSignedIn(true);
  };

  const signOut = () => {
    clearIdentity();
    void forgetAll();
    setSignInNote(null);
    setDev(false);
    setSignedIn(false);
    say((tt) => tt.signedOut);
  };

  const go = (v: View) => {
    setJustClaimed(null);
    setView(v);
  };

  const tabs: { view: View; label: string }[] = [
    { view: "campaigns", label: t.tabCampaigns },
    { view: "vouchers", label: t.tabVouchers },
    { view: "tradein", label: t.tabTradeIn },
    { view: "history", label: t.tabHistory },
  ];

  return (
    <TextsContext.Provider value={t}>
      <header class="bar">
        <h1 class="app-title">{t.appTitle}</h1>
        <div class="bar-actions">
          <button type="button" class="chip" data-testid="elder-toggle" aria-pressed={elder} onClick={toggleElder}>
            {t.elderToggle}
          </button>
          <button
            type="button"
            class="chip"
            data-testid="lang-toggle"
            lang={lang === "zh" ? "en" : "zh-CN"}
            onClick={toggleLang}
          >
            {t.langToggle}
            <span class="sr-only"> {t.langToggleLabel}</span>
          </button>
        </div>
        {signedIn && dev && (
          <p class="dev-badge dev-strip" data-testid="dev-badge">
            {t.devBadge}
          </p>
        )}
      </header>
      <main class={signedIn ? "with-tabs" : undefined}>
        {!signedIn ? (
          <SignIn note={signInNote} onSignedIn={signedInNow} />
        ) : view === "campaigns" ? (
          <Campaigns
            say={say}
            onClaimed={(id) => {
              setJustClaimed(id);
              setView("vouchers");
            }}
          />
        ) : view === "vouchers" ? (
          <Vouchers say={say} expect={justClaimed} />
        ) : view === "tradein" ? (
          <TradeIn say={say} />
        ) : (
          <History onSignOut={signOut} />
        )}
      </main>
      {signedIn && (
        <nav class="tabs" aria-label={t.navLabel}>
          {tabs.map((tab) => (
            <button
              key={tab.view}
              type="button"
              class="tab"
              data-testid={`tab-${tab.view}`}
              aria-current={view === tab.view ? "page" : undefined}
              onClick={() => go(tab.view)}
            >
              {tab.label}
            </button>
          ))}
        </nav>
      )}
      <div class={toast ? "toast show" : "toast"} role="status" aria-live="polite" data-testid="toast">
        {toast ? toast.msg(t) : ""}
      </div>
    </TextsContext.Provider>
  );
}
