// 领券: the campaigns I may claim, each with its rule, place, stock, my count and the
// countdown (server clock) to its next round.
//
// Claiming: one claim id per tap; sendWithRetry retries the SAME id after a network error,
// 429 or 503 (the service answers a replay with the first voucher), so a retry can never
// claim twice. The button is disabled until the round opens (it enables itself when the
// countdown reaches zero, then the list is refreshed) and while a claim is in flight.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import { categoryText, countdown, dateTimeBj, monthDayBj, parseInstant, ruleDetails, ruleText } from "./format";
import type { Msg } from "./i18n";
import { LotteryPanel } from "./Lottery";
import type { Campaign, Round } from "./types";
import { failureMsg, isIdentityLoss, useServerNow, useT, type Say } from "./ui";

const REFRESH_MS = 30_000;

interface Props {
  say: Say;
  onClaimed: (voucherId: string) => void;
}

/** The current and coming rounds, by start (the service lists them so). */
function roundsOf(c: Campaign): Round[] {
  const rounds = c.current_round ? [c.current_round, ...c.upcoming_rounds] : [...c.upcoming_rounds];
  return rounds.filter((r) => !Number.isNaN(parseInstant(r.starts_at)));
}

/** Start times (ms, server clock) of the current and coming rounds. */
function roundStarts(c: Campaign): number[] {
  return roundsOf(c).map((r) => parseInstant(r.starts_at));
}

const isLottery = (r: Round) => r.mode === "lottery";

/**
 * At `now`: whether a rush round is open (the latest round begun is a rush), when the next
 * rush round begins, and the lottery round to show (the current round if it is one, else the next lottery round).
 */
function schedule(c: Campaign, now: number): { open: boolean; next: number | null; lottery: Round | null } {
  const rounds = roundsOf(c);
  let latest: Round | null = null;
  for (const r of rounds) {
    if (parseInstant(r.starts_at) <= now && (!latest || parseInstant(r.starts_at) >= parseInstant(latest.starts_at))) latest = r;
  }
  const futureRush = rounds.filter((r) => !isLottery(r) && parseInstant(r.starts_at) > now).map((r) => parseInstant(r.starts_at));
  const lottery =
    latest && isLottery(latest) ? latest : (rounds.find((r) => isLottery(r) && parseInstant(r.starts_at) > now) ?? null);
  return {
    open: latest !== null && !isLottery(latest),
    next: futureRush.length ? Math.min(...futureRush) : null,
    lottery,
  };
}

/** A refused claim in plain words. */
function claimFailure(e: unknown, c: Campaign): Msg {
  if (!(e instanceof ApiFailure)) return failureMsg(e);
  const details = e.body?.details ?? {};
  switch (e.code) {
    case "SOLD_OUT":
      return (t) => t.soldOut;
    case "PER_PERSON_LIMIT": {
      const n = typeof details.per_person_limit === "number" ? details.per_person_limit : c.per_person_limit;
      return (t) => t.limitReached(n);
    }
    case "ROUND_NOT_OPEN": {
      const at = typeof details.next_round_starts_at === "string" ? details.next_round_starts_at : null;
      return (t) => t.roundNotOpen(at ? monthDayBj(at, t) : null);
    }
    case "NOT_ELIGIBLE":
      if (details.reason === "place") return (t) => t.notEligiblePlace;
      if (details.reason === "real_name_level") return (t) => t.notEligibleLevel;
      return (t) => t.notEligible;
    case "CAMPAIGN_PAUSED":
      return (t) => t.paused;
    case "CAMPAIGN_NOT_FOUND":
    case "CAMPAIGN_NOT_CLAIMABLE":
      return (t) => t.campaignGone;
    case "CLAIM_ID_CONFLICT":
      return (t) => t.claimConflict;
    case "ROUND_IS_LOTTERY":
      return (t) => t.roundIsLottery;
    default:
      return failureMsg(e);
  }
}

/** Refusals after which the list (stock, rounds, my count) is worth reloading. */
const RELOAD_AFTER = ["ROUND_NOT_OPEN", "SOLD_OUT", "PER_PERSON_LIMIT", "CAMPAIGN_PAUSED", "CAMPAIGN_NOT_FOUND", "ROUND_IS_LOTTERY"];

export function Campaigns({ say, onClaimed }: Props) {
  const t = useT();
  const [list, setList] = useState<Campaign[] | null>(null);
  const [loadError, setLoadError] = useState<Msg | null>(null);
  const now = useServerNow();
  const [inFlight, setInFlight] = useState<Record<number, boolean>>({});
  const [messages, setMessages] = useState<Record<number, Msg | undefined>>({});
  const claiming = useRef(new Set<number>());
  const armed = useRef(new Set<number>());
  const alive = useRef(true);

  const load = useCallback(async (policy?: typeof api.ONCE) => {
    try {
      const fresh = await api.campaigns(policy);
      if (!alive.current) return;
      setList(fresh);
      setLoadError(null);
    } catch (e) {
      if (alive.current && !isIdentityLoss(e)) setLoadError(() => failureMsg(e));
    }
  }, []);

  useEffect(() => {
    alive.current = true;
    void load();
    const poll = setInterval(() => {
      if (document.visibilityState === "visible") void load(api.ONCE);
    }, REFRESH_MS);
    return () => {
      alive.current = false;
      clearInterval(poll);
    };
  }, [load]);

  // When a countdown reaches zero the button is already enabled (schedule() says open);
  // the list is then refreshed once for the new round's stock.
  useEffect(() => {
    if (!list) return;
    let due = false;
    for (const c of list) {
      for (const s of roundStarts(c)) {
        if (s > now) armed.current.add(s);
        else if (armed.current.delete(s)) due = true;
      }
    }
    if (due) void load();
  }, [now, list, load]);

  const setMessage = (id: number, msg: Msg | undefined) => {
    if (alive.current) setMessages((m) => ({ ...m, [id]: msg }));
  };

  const claim = async (c: Campaign) => {
    if (claiming.current.has(c.id)) return;
    claiming.current.add(c.id);
    setInFlight((f) => ({ ...f, [c.id]: true }));
    setMessage(c.id, undefined);
    const claimId = api.newClaimId();
    try {
      const result = await api.claim(c.id, claimId, (_ms, attempt) => {
        setMessage(c.id, (tt) => tt.queueing);
        if (attempt === 1) say((tt) => tt.queueing);
      });
      setMessage(c.id, (tt) => tt.claimed);
      say((tt) => tt.claimed);
      onClaimed(result.voucher_id);
    } catch (e) {
      if (isIdentityLoss(e)) return;
      const msg = claimFailure(e, c);
      setMessage(c.id, msg);
      say(msg);
      if (e instanceof ApiFailure && RELOAD_AFTER.includes(e.code)) void load(api.ONCE);
    } finally {
      claiming.current.delete(c.id);
      if (alive.current) setInFlight((f) => ({ ...f, [c.id]: false }));
    }
  };

  return (
    <section aria-labelledby="campaigns-title">
      <h2 id="campaigns-title" class="view-title">
        {t.tabCampaigns}
      </h2>
      {loadError && (
        <div class="notice">
          <p>{t.loadFailed(loadError(t))}</p>
          <button type="button" class="secondary-button" onClick={() => void load()}>
            {t.reload}
          </button>
        </div>
      )}
      {list === null && !loadError && <p class="muted">{t.loading}</p>}
      {list !== null && list.length === 0 && <p class="muted">{t.noCampaigns}</p>}
      {list !== null && list.length > 0 && (
        <ul class="cards">
          {list.map((c) => (
            <CampaignCard
              key={c.id}
              c={c}
              now={now}
              busy={inFlight[c.id] === true}
              message={messages[c.id]}
              onClaim={() => void claim(c)}
              say={say}
              onVoucher={onClaimed}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

interface CardProps {
  c: Campaign;
  now: number;
  busy: boolean;
  message: Msg | undefined;
  onClaim: () => void;
  say: Say;
  onVoucher: (voucherId: string) => void;
}

function CampaignCard({ c, now, busy, message, onClaim, say, onVoucher }: CardProps) {
  const t = useT();
  const { open, next, lottery } = schedule(c, now);
  const details = ruleDetails(c.rule, t);
  // The claim button is offered for rush rounds only (a lottery round answers ROUND_IS_LOTTERY).
  const showRush = !lottery || open || next !== null;
  const validity = c.validity.ends_at
    ? t.validUntil(dateTimeBj(c.validity.ends_at))
    : c.validity.days_after_claim
      ? t.validDays(c.validity.days_after_claim)
      : null;
  const nextText = next !== null ? dateTimeBj(new Date(next).toISOString()) : "";
  return (
    <li class="card" data-testid={`campaign-${c.id}`}>
      <div class="card-head">
        <h3 class="card-title">{c.name}</h3>
        <span class="tag">{categoryText(c.category, t)}</span>
      </div>
      <p class="rule">{ruleText(c.rule, t)}</p>
      {details.length > 0 && (
        <ul class="rule-details meta" aria-label={t.ruleDetailsLabel} data-testid="rule-details">
          {details.map((d) => (
            <li key={d}>{d}</li>
          ))}
        </ul>
      )}
      <p class="meta">{t.usableIn(c.owner_place_name)}</p>
      {validity && <p class="meta secondary">{validity}</p>}
      <p class="meta">
        {c.current_round ? t.roundStock(c.live_stock) : t.totalStock(c.remaining_stock)}
        {c.current_round && <span class="secondary"> · {t.totalStock(c.remaining_stock)}</span>}
        {" · "}
        {t.claimedOf(c.my_claimed, c.per_person_limit)}
      </p>
      {showRush && (
        <>
          <p class="countdown" data-testid="countdown">
            {open ? (
              <span class="open-now">{t.openNow}</span>
            ) : next !== null ? (
              <>
                {t.opensIn} <strong class="clock">{countdown(next - now)}</strong>
                <span class="secondary"> · {t.startsAt(nextText)}</span>
              </>
            ) : (
              t.noRound
            )}
          </p>
          <button
            type="button"
            class="primary"
            data-testid="claim-button"
            disabled={!open || busy}
            aria-busy={busy}
            onClick={onClaim}
          >
            {busy ? t.claiming : open ? t.claim : t.notOpenYet}
          </button>
        </>
      )}
      {lottery && <LotteryPanel key={lottery.round_no} c={c} round={lottery} now={now} say={say} onVoucher={onVoucher} />}
      <p class="card-msg" data-testid="campaign-message">
        {message ? message(t) : ""}
      </p>
    </li>
  );
}
