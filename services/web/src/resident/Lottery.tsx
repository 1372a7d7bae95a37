// 报名摇号: a lottery round on a campaign's card. Registration window with a countdown on the
// server's clock, the 报名 button (idempotent on the server: a retry or a second device gets
// the same entry), my entry's hash as it will be published, the round's commitment (the
// seed's hash, published before registration opened) and, once drawn, my result and a link
// to the published draw that anyone can check with `issuance verify-draw`.
//
// The round's phase is the later of what the server last said and what the clock says now
// (the window's ends are known), so the page moves on at the second the window closes and
// learns of the draw from the server (polled with jitter after the draw may happen, and on
// "刷新结果").

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import { syncClock } from "./clock";
import { countdown, dateTimeBj, monthDayBj, parseInstant, shortHash } from "./format";
import type { Msg } from "./i18n";
import type { Campaign, LotteryPhase, MyLottery, Round } from "./types";
import { failureMsg, isIdentityLoss, msg, useT, type Say } from "./ui";

/** Waiting for a draw: poll every 20–40 s (jittered, so a city's phones do not poll together). */
const DRAW_POLL_MS = 20_000;

const ORDER: LotteryPhase[] = ["upcoming", "registration_open", "registration_closed", "drawn"];

/** The phase the clock says, from the round's window. */
function clockPhase(round: Round, now: number): LotteryPhase {
  const opens = parseInstant(round.registration_opens_at ?? "");
  const closes = parseInstant(round.registration_closes_at ?? "");
  if (!Number.isNaN(opens) && now < opens) return "upcoming";
  if (!Number.isNaN(closes) && now < closes) return "registration_open";
  return "registration_closed";
}

function later(a: LotteryPhase, b: LotteryPhase | undefined): LotteryPhase {
  if (!b) return a;
  return ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a;
}

/** A refused registration in plain words. */
function registrationFailure(e: unknown, c: Campaign): Msg {
  if (!(e instanceof ApiFailure)) return failureMsg(e);
  const details = e.body?.details ?? {};
  const at = (key: string) => (typeof details[key] === "string" ? (details[key] as string) : null);
  switch (e.code) {
    case "REGISTRATION_NOT_OPEN": {
      const opens = at("registration_opens_at");
      return (t) => t.registrationNotOpen(opens ? monthDayBj(opens, t) : null);
    }
    case "REGISTRATION_CLOSED": {
      const closes = at("registration_closes_at");
      return (t) => t.registrationClosed(closes ? monthDayBj(closes, t) : null);
    }
    case "NOT_ELIGIBLE":
      if (details.reason === "place") return (t) => t.notEligiblePlace;
      if (details.reason === "real_name_level") return (t) => t.notEligibleLevel;
      return (t) => t.notEligible;
    case "PER_PERSON_LIMIT": {
      const n = typeof details.per_person_limit === "number" ? details.per_person_limit : c.per_person_limit;
      return (t) => t.limitNoNeed(n);
    }
    case "CAMPAIGN_PAUSED":
      return (t) => t.paused;
    case "ROUND_NOT_LOTTERY":
      return (t) => t.roundNotLottery;
    case "ROUND_NOT_FOUND":
      return (t) => t.roundGone;
    case "CAMPAIGN_NOT_FOUND":
    case "CAMPAIGN_NOT_CLAIMABLE":
      return (t) => t.campaignGone;
    default:
      return failureMsg(e);
  }
}

interface Props {
  c: Campaign;
  round: Round;
  now: number;
  say: Say;
  /** Shows my vouchers, waiting for this one. */
  onVoucher: (voucherId: string) => void;
}

export function LotteryPanel({ c, round, now, say, onVoucher }: Props) {
  const t = useT();
  const [mine, setMine] = useState<MyLottery | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<Msg | null>(null);
  const alive = useRef(true);
  const inFlight = useRef(false);
  const roundNo = round.round_no;

  const load = useCallback(async () => {
    try {
      const fresh = await api.myLottery(c.id, roundNo, api.ONCE);
      if (alive.current) setMine(fresh);
    } catch (e) {
      if (alive.current && !isIdentityLoss(e)) setMessage(() => failureMsg(e));
    }
  }, [c.id, roundNo]);

  useEffect(() => {
    alive.current = true;
    void load();
    return () => {
      alive.current = false;
    };
  }, [load]);

  const phase = later(clockPhase(round, now), mine?.lottery.phase);
  const drawFrom = parseInstant(round.starts_at);
  const drawDue = phase === "registration_closed" && !Number.isNaN(drawFrom) && now >= drawFrom;

  // Ask again when the clock moves the round on (the window opens or closes, the draw is due).
  const clockStep = `${clockPhase(round, now)}:${drawDue}`;
  const lastStep = useRef(clockStep);
  useEffect(() => {
    if (lastStep.current === clockStep) return;
    lastStep.current = clockStep;
    void load();
  }, [clockStep, load]);

  // Waiting for the draw: poll, jittered.
  useEffect(() => {
    if (!drawDue) return;
    let timer = 0;
    const next = () => {
      timer = window.setTimeout(() => {
        if (document.visibilityState === "visible") void load();
        next();
      }, DRAW_POLL_MS + Math.floor(Math.random() * DRAW_POLL_MS));
    };
    next();
    return () => clearTimeout(timer);
  }, [drawDue, load]);

  const registerNow = async () => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setMessage(null);
    try {
      const entry = await api.register(c.id, roundNo, (_ms, attempt) => {
        if (alive.current) setMessage(() => msg((tt) => tt.queueing));
        if (attempt === 1) say((tt) => tt.queueing);
      });
      if (!alive.current) return;
      setMine((m) => (m ? { ...m, registration: entry } : m));
      setMessage(() => msg((tt) => tt.registeredDone));
      say((tt) => tt.registeredDone);
      void load();
    } catch (e) {
      if (isIdentityLoss(e)) return;
      const why = registrationFailure(e, c);
      if (alive.current) setMessage(() => why);
      say(why);
      void load();
    } finally {
      inFlight.current = false;
      if (alive.current) setBusy(false);
    }
  };

  const refresh = () => {
    void syncClock();
    void load();
  };

  const opens = round.registration_opens_at ?? "";
  const closes = round.registration_closes_at ?? "";
  const entry = mine?.registration ?? null;
  const result = mine?.result ?? null;
  const commitment = mine?.lottery.commitment ?? round.commitment ?? "";
  const quantity = mine?.lottery.quantity ?? round.quantity;

  let status: ComponentChildren;
  if (phase === "upcoming") {
    status = (
      <>
        {t.lotteryOpensIn} <strong class="clock">{countdown(parseInstant(opens) - now)}</strong>
      </>
    );
  } else if (phase === "registration_open") {
    status = (
      <>
        <span class="open-now">{t.lotteryOpen}</span> · {t.lotteryClosesIn}{" "}
        <strong class="clock">{countdown(parseInstant(closes) - now)}</strong>
      </>
    );
  } else if (phase === "registration_closed") {
    status = drawDue ? t.lotteryAwaitingDraw : t.lotteryClosed(dateTimeBj(round.starts_at));
  } else {
    status = t.lotteryDrawn(mine?.lottery.winners ?? 0, mine?.lottery.registered ?? 0);
  }

  let outcome: ComponentChildren = null;
  if (phase === "drawn" && mine) {
    if (!entry) {
      outcome = <p class="meta" data-testid="lottery-result" data-result="none">{t.notRegistered}</p>;
    } else if (result?.won) {
      const voucher = result.voucher_id;
      const text =
        result.issue_status === "issued"
          ? t.wonIssued
          : result.issue_status === "refused"
            ? result.reason
              ? t.wonRefused(result.reason)
              : t.wonRefusedPlain
            : t.wonPending;
      outcome = (
        <div class="lottery-outcome won" data-testid="lottery-result" data-result="won">
          <p class="big">{t.won}</p>
          <p>{text}</p>
          {voucher && result.issue_status === "issued" && (
            <button type="button" class="primary" data-testid="lottery-see-voucher" onClick={() => onVoucher(voucher)}>
              {t.seeVoucher}
            </button>
          )}
        </div>
      );
    } else if (result) {
      outcome = (
        <div class="lottery-outcome" data-testid="lottery-result" data-result="lost">
          <p class="big">{t.lost}</p>
          <p class="meta">{t.lostHint}</p>
        </div>
      );
    }
  }

  return (
    <div class="lottery" data-testid="lottery-panel" data-phase={phase} data-round={roundNo}>
      <h4 class="lottery-title">{t.lotteryTitle(roundNo, quantity)}</h4>
      <p class="meta secondary">{t.lotteryWindow(dateTimeBj(opens), dateTimeBj(closes))}</p>
      <p class="countdown" data-testid="lottery-phase">
        {status}
      </p>
      {phase === "registration_open" && mine && (
        <p class="meta secondary">{t.lotteryRegisteredCount(mine.lottery.registered)}</p>
      )}
      {entry ? (
        <p class="registered" data-testid="registration-status" data-registered="true">
          <strong>✓ {t.registered}</strong>
          <span class="meta">
            {" · "}
            {t.registrationHash}{" "}
            <code data-testid="registration-hash" title={entry.registration_hash}>
              {shortHash(entry.registration_hash)}
            </code>
          </span>
        </p>
      ) : (
        phase === "registration_open" && (
          <button
            type="button"
            class="primary"
            data-testid="register-button"
            disabled={busy}
            aria-busy={busy}
            onClick={() => void registerNow()}
          >
            {busy ? t.registering : t.register}
          </button>
        )
      )}
      {outcome}
      {(entry !== null || phase === "registration_closed" || phase === "drawn") && (
        <button type="button" class="secondary-button" data-testid="lottery-refresh" onClick={refresh}>
          {t.refreshResult}
        </button>
      )}
      {commitment && (
        <p class="meta commitment">
          {t.commitment}:{" "}
          <code data-testid="commitment" title={commitment}>
            {shortHash(commitment)}
          </code>
          <span class="secondary"> · {t.commitmentHint}</span>
        </p>
      )}
      {phase === "drawn" && (
        <p class="meta">
          <a class="link" data-testid="draw-link" href={api.drawUrl(c.id, roundNo)} target="_blank" rel="noopener">
            {t.drawLink}
          </a>
        </p>
      )}
      <p class="card-msg" data-testid="lottery-message">
        {message ? message(t) : ""}
      </p>
    </div>
  );
}
