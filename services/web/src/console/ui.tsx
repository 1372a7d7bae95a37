// What every screen shares: loading one or more API answers with loading and error states,
// errors in plain words, amounts in yuan, the confirmation dialog and the downloads block.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import { formatYuan } from "../shared/money";
import { fileUrl } from "./api";
import { isCounty } from "./format";
import { type Texts, useT } from "./i18n";
import { REPORT_FILES } from "./types";

/** A failed call in plain words. */
export function errorText(e: unknown, t: Texts): string {
  if (!(e instanceof ApiFailure)) return t.errorOther;
  if (e.network) return t.errorNetwork;
  const known = t.errors[e.code];
  if (known) return known;
  if (e.status >= 500) return t.errorServer;
  return e.body?.message ? `${t.errorOther}：${e.body.message}` : t.errorOther;
}

/** The code of a failure, shown beside the message and kept in a data attribute. */
export function errorCode(e: unknown): string {
  if (e instanceof ApiFailure) return e.code;
  return e instanceof Error ? e.name : "ERROR";
}

/** The role in words: a city role at a county's place (140522) is the county's finance office. */
export function roleName(role: string, place: number | null, t: Texts): string {
  const key = role === "city" && place !== null && isCounty(place) ? "county" : role;
  return t.roles[key] ?? role;
}

/** "晋城市 · 市级财政": the place and the role in words. */
export function placeRole(officer: { role: string; place: number; place_name: string }, t: Texts): string {
  return `${officer.place_name} · ${roleName(officer.role, officer.place, t)}`;
}

export type Load<T> =
  | { kind: "loading" }
  | { kind: "error"; error: unknown }
  | { kind: "ok"; data: T };

/**
 * Runs `load` when `deps` change (and on `reload`), keeping only the answer of the latest
 * call. `set` replaces the data (a write's answer re-renders the screen without a reload).
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<Load<T>>({ kind: "loading" });
  const seq = useRef(0);
  const reload = useCallback(() => {
    const n = ++seq.current;
    setState((s) => (s.kind === "ok" ? s : { kind: "loading" }));
    load().then(
      (data) => n === seq.current && setState({ kind: "ok", data }),
      (error: unknown) => n === seq.current && setState({ kind: "error", error }),
    );
  }, deps);
  useEffect(() => {
    seq.current++;
    setState({ kind: "loading" });
    reload();
  }, [reload]);
  const set = useCallback((data: T) => {
    seq.current++;
    setState({ kind: "ok", data });
  }, []);
  return { state, reload, set };
}

export function Loading() {
  const t = useT();
  return (
    <p class="loading" role="status" data-testid="loading">
      <span class="spinner" aria-hidden="true" />
      {t.loading}
    </p>
  );
}

/** Whether trying again may help: no answer, busy, or a server fault (not a refusal). */
function retryable(e: unknown): boolean {
  return !(e instanceof ApiFailure) || e.network || e.status === 429 || e.status >= 500;
}

export function ScreenError(props: { error: unknown; onRetry?: () => void }) {
  const t = useT();
  const code = errorCode(props.error);
  return (
    <div class="error-box" role="alert" data-testid="screen-error" data-code={code}>
      <p class="error-text">{errorText(props.error, t)}</p>
      <p class="error-code">{t.errorCode(code)}</p>
      {props.onRetry && retryable(props.error) && (
        <button type="button" class="btn btn-secondary" onClick={props.onRetry}>
          {t.retry}
        </button>
      )}
    </div>
  );
}

/** Loading, error, or `children(data)`. */
export function Loaded<T>(props: { load: Load<T>; retry: () => void; children: (data: T) => ComponentChildren }) {
  if (props.load.kind === "loading") return <Loading />;
  if (props.load.kind === "error") return <ScreenError error={props.load.error} onRetry={props.retry} />;
  return <>{props.children(props.load.data)}</>;
}

/** An amount in yuan, or "—" for null (uncapped). */
export function Yuan(props: { fen: number | null | undefined; testid?: string }) {
  return (
    <span class="num" data-testid={props.testid}>
      {props.fen === null || props.fen === undefined ? "—" : formatYuan(props.fen)}
    </span>
  );
}

/** Sums integer fen (nulls left out): totals are sums of integers, never of formatted text. */
export function sumFen<T>(rows: T[], get: (row: T) => number | null): number {
  let total = 0;
  for (const r of rows) total += get(r) ?? 0;
  return total;
}

export function StatusBadge(props: { status: string; testid?: string }) {
  const t = useT();
  return (
    <span class={`status status-${props.status}`} data-testid={props.testid} data-status={props.status}>
      {t.status[props.status] ?? props.status}
    </span>
  );
}

/**
 * A modal dialog (native <dialog> with showModal: focus is trapped inside and Escape
 * cancels). The element marked `data-initial-focus` gets the focus on opening; the focus
 * goes back to whatever had it when the dialog closes.
 */
export function Modal(props: {
  title: string;
  testid: string;
  busy?: boolean;
  onCancel: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const busy = useRef(false);
  busy.current = props.busy ?? false;
  useEffect(() => {
    const d = ref.current;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!d) return;
    if (!d.open) d.showModal();
    d.querySelector<HTMLElement>("[data-initial-focus]")?.focus();
    return () => {
      if (d.open) d.close();
      if (opener && opener.isConnected) opener.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="modal"
      data-testid={props.testid}
      aria-labelledby={`${props.testid}-title`}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy.current) props.onCancel();
      }}
    >
      <h2 id={`${props.testid}-title`}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** The report files of `period`, each a plain same-origin download link. */
export function Downloads(props: { period: string }) {
  const t = useT();
  return (
    <section class="panel" data-testid="downloads" aria-labelledby="downloads-title">
      <h2 id="downloads-title">{t.downloadsTitle(props.period)}</h2>
      <ul class="downloads">
        {REPORT_FILES.map((name) => (
          <li key={name}>
            <a href={fileUrl(props.period, name)} download="" data-testid={`download-${name}`} class="download">
              <span class="file-name">{name}</span>
              <span class="file-what">{t.files[name]}</span>
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}
