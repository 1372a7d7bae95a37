// 以旧换新 (car trade-in, seed 004 §二(一)): the schemes (window, caps), my applications with
// their status (submitted, more papers asked for and what, approved with the amount,
// rejected with the reason), and the application form, also used to send more papers.
//
// Submitting: each paper is uploaded first (POST /v1/trade-in/documents, the raw bytes with
// the file's type, sniffed from its first bytes when the phone does not say) and answers its
// SHA-256; then the application cites the hashes. The application id is made once per
// application and reused on every retry (the service answers a retry with the first
// application), so a lost reply never makes two. The price is typed in yuan and parsed to
// integer fen as text (never through a float). Refusals are shown beside the field the
// service names (`details.field`), in words.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import { formatYuan, parseYuanToFen, yuanPlain } from "../shared/money";
import * as api from "./api";
import { serverNow } from "./clock";
import { dateTimeBj, dayBj, percentFromBp } from "./format";
import type { Msg, Texts } from "./i18n";
import type { TradeInApplication, TradeInKind, TradeInPapers, TradeInScheme } from "./types";
import { failureMsg, isIdentityLoss, msg, useT, type Say } from "./ui";

const POLL_MS = 30_000;
/** The service's default `documents.max_bytes`; a larger file is refused before uploading. */
const MAX_FILE_BYTES = 10 * 1024 * 1024;
/** The service's highest price (voucher_core::trade_in::MAX_PRICE_FEN). */
const MAX_PRICE_FEN = 10_000_000_000;

type FieldKey =
  | "kind"
  | "old_vin"
  | "old_plate"
  | "certifier_name"
  | "certifier_code"
  | "certificate_file"
  | "invoice_no"
  | "invoice_date"
  | "new_vin"
  | "price"
  | "dealer_name"
  | "dealer_code"
  | "invoice_file";

/** The service's field paths (`details.field`) as the form's fields. */
const SERVER_FIELDS: Record<string, FieldKey> = {
  kind: "kind",
  "old_car.vin": "old_vin",
  "old_car.plate": "old_plate",
  "certifier.name": "certifier_name",
  "certifier.credit_code": "certifier_code",
  certificate_sha256: "certificate_file",
  "new_car.invoice_no": "invoice_no",
  "new_car.invoice_date": "invoice_date",
  "new_car.vin": "new_vin",
  "new_car.price_fen": "price",
  "new_car.dealer.name": "dealer_name",
  "new_car.dealer.credit_code": "dealer_code",
  "new_car.invoice_sha256": "invoice_file",
};

/** The order fields appear in (the first one in error gets the focus). */
const FIELD_ORDER: FieldKey[] = [
  "kind",
  "old_vin",
  "old_plate",
  "certifier_name",
  "certifier_code",
  "certificate_file",
  "invoice_no",
  "invoice_date",
  "new_vin",
  "price",
  "dealer_name",
  "dealer_code",
  "invoice_file",
];

type Errors = Partial<Record<FieldKey, Msg>>;

/** `min(cap of the kind, ⌊price × rate⌋ if the scheme sets a rate, price)`, in integer fen. */
export function estimate(s: TradeInScheme, kind: TradeInKind, priceFen: number): number {
  const cap = kind === "scrap" ? s.scrap_cap_fen : s.transfer_cap_fen;
  let amount = Math.min(cap, priceFen);
  if (s.price_rate_bp != null) {
    const product = priceFen * s.price_rate_bp; // ≤ 10^10 × 10^4 < 2^53: exact
    amount = Math.min(amount, (product - (product % 10_000)) / 10_000);
  }
  return amount;
}

const isOpen = (s: TradeInScheme, today: string) => s.opens_on <= today && today <= s.closes_on;

/** The type of a paper from its first bytes (phones do not always say), or null. */
async function sniff(file: File): Promise<string | null> {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  const starts = (bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts([0x25, 0x50, 0x44, 0x46, 0x2d])) return "application/pdf";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  return null;
}

/** A refusal of the application in words: on a field when the service names one. */
function refusal(e: ApiFailure, t: Texts): { field: FieldKey | null; text: string } {
  const d = e.body?.details ?? {};
  const str = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : "");
  const field = SERVER_FIELDS[str("field")] ?? null;
  switch (e.code) {
    case "INVALID_FIELD": {
      const reason = str("reason");
      if (field === "new_vin" && reason.includes("old car")) return { field, text: t.tiSameVin };
      if (field === "invoice_date" && reason.includes("future")) return { field, text: t.tiFutureDate };
      if (field === "price" && reason.includes("no subsidy")) return { field, text: t.tiNoSubsidyAtPrice };
      return { field, text: (field && t.tiFieldHints[field]) || t.failed(e.code) };
    }
    case "OUTSIDE_SCHEME_WINDOW":
      return str("field") === "today"
        ? { field: null, text: t.tiOutsideWindowToday(str("opens_on"), str("closes_on")) }
        : { field: field ?? "invoice_date", text: t.tiOutsideWindowDate(str("opens_on"), str("closes_on")) };
    case "OUTSIDE_PROVINCE":
      return { field, text: t.tiOutsideProvince };
    case "DOCUMENT_NOT_FOUND":
      return { field, text: t.tiDocumentMissing };
    case "OLD_CAR_ALREADY_CLAIMED":
      return { field: "old_vin", text: t.tiOldCarClaimed };
    case "NEW_CAR_ALREADY_CLAIMED":
      return { field: "new_vin", text: t.tiNewCarClaimed };
    case "INVOICE_ALREADY_CLAIMED":
      return { field: "invoice_no", text: t.tiInvoiceClaimed };
    case "APPLICATION_ID_CONFLICT":
      return { field: null, text: t.tiIdConflict };
    case "APPLICATION_STATUS_CONFLICT":
      return { field: null, text: t.tiStatusConflict };
    case "APPLICATION_NOT_FOUND":
      return { field: null, text: t.tiAppGone };
    case "NOT_ELIGIBLE":
      return { field: null, text: t.tiNotEligible };
    case "TRADE_IN_SCHEME_NOT_FOUND":
      return { field: null, text: t.tiSchemeGone };
    default:
      return { field: null, text: failureMsg(e)(t) };
  }
}

export function TradeIn({ say }: { say: Say }) {
  const t = useT();
  const [schemes, setSchemes] = useState<TradeInScheme[] | null>(null);
  const [apps, setApps] = useState<TradeInApplication[] | null>(null);
  const [loadError, setLoadError] = useState<Msg | null>(null);
  const [formOpen, setFormOpen] = useState(false);
  const [amending, setAmending] = useState<TradeInApplication | null>(null);
  const alive = useRef(true);

  const load = useCallback(async (policy?: typeof api.ONCE) => {
    try {
      const [s, a] = await Promise.all([api.tradeInSchemes(), api.myTradeIns(policy)]);
      if (!alive.current) return;
      setSchemes(s);
      setApps(a);
      setLoadError(null);
    } catch (e) {
      if (alive.current && !isIdentityLoss(e)) setLoadError(() => failureMsg(e));
    }
  }, []);

  useEffect(() => {
    alive.current = true;
    void load();
    return () => {
      alive.current = false;
    };
  }, [load]);

  // Waiting for a review: look again now and then.
  const waiting = apps?.some((a) => a.status === "submitted") ?? false;
  useEffect(() => {
    if (!waiting) return;
    const poll = setInterval(() => {
      if (document.visibilityState === "visible") void load(api.ONCE);
    }, POLL_MS);
    return () => clearInterval(poll);
  }, [waiting, load]);

  const today = dayBj(serverNow());
  const done = (a: TradeInApplication, amended: boolean) => {
    say(amended ? (tt) => tt.tiAmended : (tt) => tt.tiSubmitted);
    setApps((list) => [a, ...(list ?? []).filter((x) => x.id !== a.id)]);
    setFormOpen(false);
    setAmending(null);
    void load(api.ONCE);
  };
  const showForm = amending !== null || formOpen || (apps !== null && apps.length === 0);

  return (
    <section aria-labelledby="tradein-title" class="trade-in">
      <h2 id="tradein-title" class="view-title">
        {t.tabTradeIn}
      </h2>
      <p class="muted secondary">{t.tiIntro}</p>
      {loadError && (
        <div class="notice">
          <p>{t.loadFailed(loadError(t))}</p>
          <button type="button" class="secondary-button" onClick={() => void load()}>
            {t.reload}
          </button>
        </div>
      )}
      {(schemes === null || apps === null) && !loadError && <p class="muted">{t.loading}</p>}
      {apps !== null && apps.length > 0 && (
        <div class="group">
          <div class="group-head">
            <h3 class="group-title">
              {t.tiMine} <span class="count">({apps.length})</span>
            </h3>
            <button type="button" class="secondary-button" data-testid="ti-refresh" onClick={() => void load()}>
              {t.reload}
            </button>
          </div>
          <ul class="cards">
            {apps.map((a) => (
              <ApplicationCard key={a.id} a={a} onAmend={() => setAmending(a)} amending={amending?.id === a.id} />
            ))}
          </ul>
        </div>
      )}
      {schemes !== null && (
        <div class="group">
          <h3 class="group-title">{t.tiSchemes}</h3>
          {schemes.length === 0 ? (
            <p class="muted" data-testid="ti-no-schemes">
              {t.tiNoSchemes}
            </p>
          ) : (
            <ul class="cards">
              {schemes.map((s) => (
                <li class="card" key={s.program_id} data-testid={`ti-scheme-${s.program_id}`}>
                  <div class="card-head">
                    <h4 class="card-title">{s.program_name || t.tiSchemeName(s.program_id)}</h4>
                    <span class="tag">{isOpen(s, today) ? t.tiSchemeOpen : t.tiSchemeClosed}</span>
                  </div>
                  <ul class="scheme-caps">
                    <li>{t.tiCapTransfer(yuanPlain(s.transfer_cap_fen))}</li>
                    <li>{t.tiCapScrap(yuanPlain(s.scrap_cap_fen))}</li>
                  </ul>
                  {s.price_rate_bp != null && <p class="meta">{t.tiRate(percentFromBp(s.price_rate_bp))}</p>}
                  <p class="meta">{t.tiWindow(s.opens_on, s.closes_on)}</p>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {schemes !== null && schemes.length > 0 && apps !== null && (
        <div class="group">
          {showForm ? (
            <ApplicationForm
              key={amending?.id ?? "new"}
              schemes={schemes}
              today={today}
              amend={amending}
              onDone={done}
              onCancel={
                amending !== null || apps.length > 0
                  ? () => {
                      setAmending(null);
                      setFormOpen(false);
                    }
                  : null
              }
              onStale={() => void load(api.ONCE)}
            />
          ) : (
            <button type="button" class="primary" data-testid="ti-new" onClick={() => setFormOpen(true)}>
              {t.tiNew}
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function ApplicationCard({ a, onAmend, amending }: { a: TradeInApplication; onAmend: () => void; amending: boolean }) {
  const t = useT();
  return (
    <li class={`card trade-in-app status-${a.status}`} data-testid={`ti-app-${a.id}`} data-status={a.status}>
      <div class="card-head">
        <h4 class="card-title">{t.tiKinds[a.kind] ?? a.kind}</h4>
        <span class="tag" data-testid="ti-app-status">
          {t.tiStatus[a.status] ?? a.status}
        </span>
      </div>
      {a.status === "approved" ? (
        <p class="rule saved" data-testid="ti-app-amount">
          {t.tiApproved(formatYuan(a.amount_fen))}
        </p>
      ) : (
        <p class="meta" data-testid="ti-app-amount">
          {t.tiAmount(formatYuan(a.amount_fen))}
        </p>
      )}
      {a.status === "rejected" && a.rejection_reason && (
        <p class="state" data-testid="ti-app-reason">
          {t.tiRejected(a.rejection_reason)}
        </p>
      )}
      {a.status === "needs_more" && (
        <>
          <p class="notice" data-testid="ti-app-requested">
            {t.tiRequested(a.requested ?? "")}
          </p>
          {!amending && (
            <button type="button" class="primary" data-testid="ti-amend" onClick={onAmend}>
              {t.tiAmend}
            </button>
          )}
        </>
      )}
      <p class="meta secondary">{t.tiCars(a.old_car.vin, a.new_car.vin)}</p>
      <p class="meta secondary">
        {t.tiInvoiceLine(a.new_car.invoice_no, a.new_car.invoice_date, formatYuan(a.new_car.price_fen))}
      </p>
      <p class="meta">{t.tiSubmittedAt(dateTimeBj(a.submitted_at))}</p>
    </li>
  );
}

interface FormProps {
  schemes: TradeInScheme[];
  today: string;
  amend: TradeInApplication | null;
  onDone: (a: TradeInApplication, amended: boolean) => void;
  onCancel: (() => void) | null;
  onStale: () => void;
}

interface Values {
  program: string;
  kind: TradeInKind;
  old_vin: string;
  old_plate: string;
  certifier_name: string;
  certifier_code: string;
  invoice_no: string;
  invoice_date: string;
  new_vin: string;
  price: string;
  dealer_name: string;
  dealer_code: string;
}

function initialValues(schemes: TradeInScheme[], today: string, a: TradeInApplication | null): Values {
  if (a) {
    return {
      program: String(a.program_id),
      kind: a.kind === "scrap" ? "scrap" : "transfer",
      old_vin: a.old_car.vin,
      old_plate: a.old_car.plate,
      certifier_name: a.certifier.name,
      certifier_code: a.certifier.credit_code,
      invoice_no: a.new_car.invoice_no,
      invoice_date: a.new_car.invoice_date,
      new_vin: a.new_car.vin,
      price: yuanPlain(a.new_car.price_fen),
      dealer_name: a.new_car.dealer.name,
      dealer_code: a.new_car.dealer.credit_code,
    };
  }
  const open = schemes.find((s) => isOpen(s, today)) ?? schemes[0];
  return {
    program: open ? String(open.program_id) : "",
    kind: "transfer",
    old_vin: "",
    old_plate: "",
    certifier_name: "",
    certifier_code: "",
    invoice_no: "",
    invoice_date: "",
    new_vin: "",
    price: "",
    dealer_name: "",
    dealer_code: "",
  };
}

const squeeze = (s: string) => s.trim().replace(/\s+/g, "").toUpperCase();

function ApplicationForm({ schemes, today, amend, onDone, onCancel, onStale }: FormProps) {
  const t = useT();
  const [v, setV] = useState<Values>(() => initialValues(schemes, today, amend));
  const [files, setFiles] = useState<{ certificate: File | null; invoice: File | null }>({ certificate: null, invoice: null });
  const [errors, setErrors] = useState<Errors>({});
  const [formMsg, setFormMsg] = useState<Msg | null>(null);
  const [busy, setBusy] = useState<Msg | null>(null);
  const applicationId = useRef(api.newClaimId());
  const uploaded = useRef(new WeakMap<File, string>());
  const formRef = useRef<HTMLFormElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (amend) headingRef.current?.focus();
  }, [amend]);

  const set = (k: keyof Values) => (ev: Event) => {
    const value = (ev.currentTarget as HTMLInputElement).value;
    setV((cur) => ({ ...cur, [k]: value }));
    if (k in errors) setErrors((cur) => ({ ...cur, [k]: undefined }));
  };

  const scheme = schemes.find((s) => String(s.program_id) === v.program) ?? null;
  const priceFen = parseYuanToFen(v.price, MAX_PRICE_FEN);
  const estimated = scheme && priceFen !== null ? estimate(scheme, v.kind, priceFen) : null;

  const focusFirst = (errs: Errors) => {
    const first = FIELD_ORDER.find((k) => errs[k]);
    if (!first) return;
    const el = formRef.current?.querySelector<HTMLElement>(`[data-field="${first}"]`);
    el?.focus();
  };

  /** Checks what the page can check; the service checks the rest (VIN check digits, codes…). */
  const check = (): Errors => {
    const errs: Errors = {};
    const required: (keyof Values & FieldKey)[] = [
      "old_vin",
      "old_plate",
      "certifier_name",
      "certifier_code",
      "invoice_no",
      "new_vin",
      "dealer_name",
      "dealer_code",
    ];
    for (const k of required) if (!v[k].trim()) errs[k] = (tt) => tt.tiRequired;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v.invoice_date)) errs.invoice_date = (tt) => tt.tiDateFormat;
    if (priceFen === null) errs.price = (tt) => tt.tiPriceFormat;
    if (!amend && !files.certificate) errs.certificate_file = (tt) => tt.tiFileRequired;
    if (!amend && !files.invoice) errs.invoice_file = (tt) => tt.tiFileRequired;
    if (v.old_vin.trim() && squeeze(v.old_vin) === squeeze(v.new_vin)) errs.new_vin = (tt) => tt.tiSameVin;
    return errs;
  };

  /** Uploads a chosen paper once (its hash is remembered per file); null when refused. */
  const upload = async (file: File, field: FieldKey, what: string): Promise<string | null> => {
    const known = uploaded.current.get(file);
    if (known) return known;
    const sniffed = await sniff(file);
    if (!sniffed) {
      setErrors((cur) => ({ ...cur, [field]: msg((tt) => tt.tiFileType) }));
      return null;
    }
    if (file.size > MAX_FILE_BYTES) {
      setErrors((cur) => ({ ...cur, [field]: msg((tt) => tt.tiFileTooLarge) }));
      return null;
    }
    setBusy(() => (tt: Texts) => tt.tiUploading(what));
    try {
      const doc = await api.uploadDocument(file, sniffed);
      uploaded.current.set(file, doc.sha256);
      return doc.sha256;
    } catch (e) {
      if (isIdentityLoss(e)) throw e;
      const text: Msg =
        e instanceof ApiFailure && e.code === "PAYLOAD_TOO_LARGE"
          ? (tt) => tt.tiFileTooLarge
          : e instanceof ApiFailure && (e.code === "UNSUPPORTED_MEDIA_TYPE" || e.code === "DOCUMENT_CONTENT_MISMATCH")
            ? (tt) => tt.tiFileType
            : failureMsg(e);
      setErrors((cur) => ({ ...cur, [field]: text }));
      return null;
    }
  };

  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (busy) return;
    setFormMsg(null);
    const errs = check();
    setErrors(errs);
    // A new application needs its scheme; an amendment keeps the one it was made under.
    const programId = amend ? amend.program_id : scheme?.program_id;
    if (Object.values(errs).some(Boolean) || priceFen === null || programId === undefined) {
      setFormMsg(() => msg((tt) => tt.tiFixFields));
      focusFirst(errs);
      return;
    }
    try {
      const certificate = files.certificate
        ? await upload(files.certificate, "certificate_file", t.tiCertificateDoc)
        : (amend?.certificate_sha256 ?? null);
      const invoice = files.invoice
        ? await upload(files.invoice, "invoice_file", t.tiInvoiceDoc)
        : (amend?.new_car.invoice_sha256 ?? null);
      if (!certificate || !invoice) {
        setBusy(null);
        setFormMsg(() => msg((tt) => tt.tiFixFields));
        return;
      }
      const papers: TradeInPapers = {
        kind: v.kind,
        old_car: { vin: squeeze(v.old_vin), plate: squeeze(v.old_plate) },
        certifier: { name: v.certifier_name.trim(), credit_code: squeeze(v.certifier_code) },
        certificate_sha256: certificate,
        new_car: {
          invoice_no: squeeze(v.invoice_no),
          invoice_date: v.invoice_date,
          vin: squeeze(v.new_vin),
          price_fen: priceFen,
          dealer: { name: v.dealer_name.trim(), credit_code: squeeze(v.dealer_code) },
          invoice_sha256: invoice,
        },
      };
      setBusy(() => msg((tt) => tt.tiSubmitting));
      const result = amend
        ? await api.amendTradeIn(amend.id, papers)
        : await api.submitTradeIn(applicationId.current, programId, papers);
      applicationId.current = api.newClaimId();
      setBusy(null);
      onDone(result, amend !== null);
    } catch (e) {
      setBusy(null);
      if (isIdentityLoss(e)) return;
      if (!(e instanceof ApiFailure) || e.network || e.status === 429 || e.status >= 500) {
        // The same application id is kept: submitting again is a retry, never a second application.
        setFormMsg(() => failureMsg(e));
        return;
      }
      const r = refusal(e, t);
      if (e.code === "APPLICATION_ID_CONFLICT") applicationId.current = api.newClaimId();
      if (e.code === "APPLICATION_STATUS_CONFLICT" || e.code === "APPLICATION_ID_CONFLICT") onStale();
      if (e.code === "DOCUMENT_NOT_FOUND") uploaded.current = new WeakMap();
      const code = e.code;
      const words: Msg = (tt) => refusal(new ApiFailure(e.status, e.body, false), tt).text || tt.failed(code);
      if (r.field) {
        const field = r.field;
        const next: Errors = { [field]: words };
        setErrors(next);
        setFormMsg(() => msg((tt) => tt.tiFixFields));
        focusFirst(next);
      } else {
        setFormMsg(() => words);
      }
    }
  };

  const field = (k: keyof Values & FieldKey, label: string, extra: Record<string, string> = {}) => (
    <div class="field">
      <label for={`ti-${k}`}>
        <span>{label}</span>
      </label>
      <input
        id={`ti-${k}`}
        data-testid={`ti-${k.replace(/_/g, "-")}`}
        data-field={k}
        name={k}
        value={v[k]}
        onInput={set(k)}
        aria-invalid={errors[k] ? "true" : undefined}
        aria-describedby={errors[k] ? `ti-err-${k}` : undefined}
        autocomplete="off"
        spellcheck={false}
        {...extra}
      />
      {errors[k] && (
        <p class="field-error" id={`ti-err-${k}`} data-testid={`ti-error-${k.replace(/_/g, "-")}`}>
          {errors[k]?.(t)}
        </p>
      )}
    </div>
  );

  const fileField = (k: "certificate_file" | "invoice_file", label: string, which: "certificate" | "invoice", kept: string | null) => (
    <div class="field">
      <label for={`ti-${k}`}>
        <span>{label}</span>
      </label>
      <input
        id={`ti-${k}`}
        type="file"
        data-testid={`ti-${k.replace(/_/g, "-")}`}
        data-field={k}
        accept="application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png"
        aria-invalid={errors[k] ? "true" : undefined}
        aria-describedby={errors[k] ? `ti-err-${k}` : kept ? `ti-keep-${k}` : undefined}
        onChange={(ev) => {
          const f = (ev.currentTarget as HTMLInputElement).files?.[0] ?? null;
          setFiles((cur) => ({ ...cur, [which]: f }));
          setErrors((cur) => ({ ...cur, [k]: undefined }));
        }}
      />
      {kept && !files[which] && (
        <p class="meta" id={`ti-keep-${k}`}>
          {t.tiKeepFile(kept.slice(0, 8))}
        </p>
      )}
      {errors[k] && (
        <p class="field-error" id={`ti-err-${k}`} data-testid={`ti-error-${k.replace(/_/g, "-")}`}>
          {errors[k]?.(t)}
        </p>
      )}
    </div>
  );

  return (
    <form class="card form trade-in-form" data-testid="ti-form" ref={formRef} onSubmit={(ev) => void submit(ev)} noValidate>
      <h3 class="group-title" tabIndex={-1} ref={headingRef}>
        {amend ? t.tiAmendTitle : t.tiNewTitle}
      </h3>
      {amend?.requested && <p class="notice">{t.tiRequested(amend.requested)}</p>}
      {!amend && schemes.length > 1 && (
        <div class="field">
          <label for="ti-program">
            <span>{t.tiScheme}</span>
          </label>
          <select id="ti-program" data-testid="ti-program" value={v.program} onChange={set("program")}>
            {schemes.map((s) => (
              <option key={s.program_id} value={String(s.program_id)}>
                {s.program_name || t.tiSchemeName(s.program_id)} · {isOpen(s, today) ? t.tiSchemeOpen : t.tiSchemeClosed}
              </option>
            ))}
          </select>
        </div>
      )}
      <fieldset class="choices" data-field="kind" tabIndex={-1}>
        <legend>{t.tiKind}</legend>
        {(["transfer", "scrap"] as const).map((k) => (
          <label class="choice" key={k}>
            <input
              type="radio"
              name="kind"
              value={k}
              data-testid={`ti-kind-${k}`}
              checked={v.kind === k}
              onChange={() => setV((cur) => ({ ...cur, kind: k }))}
            />
            <span>{k === "transfer" ? t.tiKindTransfer : t.tiKindScrap}</span>
          </label>
        ))}
        {errors.kind && <p class="field-error">{errors.kind(t)}</p>}
      </fieldset>
      <fieldset>
        <legend>{t.tiOldCar}</legend>
        {field("old_vin", t.tiOldVin, { autocapitalize: "characters", maxLength: "17" })}
        {field("old_plate", t.tiPlate, { autocapitalize: "characters", maxLength: "10" })}
      </fieldset>
      <fieldset>
        <legend>{t.tiCertificate}</legend>
        {field("certifier_name", v.kind === "scrap" ? t.tiCertifierScrap : t.tiCertifierTransfer)}
        {field("certifier_code", t.tiCreditCode, { autocapitalize: "characters", maxLength: "18" })}
        {fileField("certificate_file", t.tiCertificateFile, "certificate", amend?.certificate_sha256 ?? null)}
      </fieldset>
      <fieldset>
        <legend>{t.tiNewCar}</legend>
        {field("invoice_no", t.tiInvoiceNo, { autocapitalize: "characters", maxLength: "32" })}
        {field("invoice_date", t.tiInvoiceDate, { type: "date", max: today })}
        {field("new_vin", t.tiNewVin, { autocapitalize: "characters", maxLength: "17" })}
        {field("price", t.tiPrice, { inputMode: "decimal" })}
        {field("dealer_name", t.tiDealer)}
        {field("dealer_code", t.tiDealerCode, { autocapitalize: "characters", maxLength: "18" })}
        {fileField("invoice_file", t.tiInvoiceFile, "invoice", amend?.new_car.invoice_sha256 ?? null)}
      </fieldset>
      {estimated !== null && (
        <p class="estimate" data-testid="ti-estimate">
          {t.tiEstimate(formatYuan(estimated))}
        </p>
      )}
      <p class={busy ? "form-status" : "form-error"} data-testid="ti-form-message" aria-live="polite">
        {busy ? busy(t) : formMsg ? formMsg(t) : ""}
      </p>
      <button type="submit" class="primary" data-testid="ti-submit" disabled={busy !== null} aria-busy={busy !== null}>
        {amend ? t.tiSubmitAmend : t.tiSubmit}
      </button>
      {onCancel && (
        <button type="button" class="secondary-button" data-testid="ti-cancel" onClick={onCancel}>
          {t.tiCancel}
        </button>
      )}
    </form>
  );
}
