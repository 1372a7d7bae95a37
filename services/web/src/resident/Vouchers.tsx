// 我的券: my vouchers grouped 可使用 / 已使用 / 已过期, each with its validity window in
// Beijing time; a usable one opens the full-screen code.
//
// Every online load also refreshes the stored code keys (codes.ts), so the codes work later
// without a network; offline, the list last synced is shown from IndexedDB. Right after a
// claim the new voucher can take a moment to reach the record: the list is polled briefly
// until it appears.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import * as api from "./api";
import { serverNow } from "./clock";
import { cacheVouchers, cachedVouchers, isUsable, syncCodeKeys } from "./codes";
import { CodeView, type CloseReason } from "./CodeView";
import { categoryText, dateTimeBj, parseInstant, ruleText } from "./format";
import type { Msg } from "./i18n";
import type { MyVoucher } from "./types";
import { failureMsg, isIdentityLoss, useT, type Say } from "./ui";

const WAIT_TRIES = 8;
const WAIT_MS = 1_000;

interface Props {
  say: Say;
  /** A voucher just claimed, to wait for. */
  expect: string | null;
}

type Group = "usable" | "used" | "expired";

function groupOf(v: MyVoucher, now: number): Group {
  if (v.status === "redeemed") return "used";
  if (v.status === "expired") return "expired";
  if (v.usable) return "usable";
  // Issued but not usable: not valid yet (still to come) or past its end (not swept yet).
  return parseInstant(v.valid_until) <= now ? "expired" : "usable";
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function Vouchers({ say, expect }: Props) {
  const t = useT();
  const [list, setList] = useState<MyVoucher[] | null>(null);
  const [fromCache, setFromCache] = useState(false);
  const [loadError, setLoadError] = useState<Msg | null>(null);
  const [waiting, setWaiting] = useState(false);
  const [open, setOpen] = useState<MyVoucher | null>(null);
  const opener = useRef<HTMLElement | null>(null);
  const alive = useRef(true);

  const showCache = useCallback(async (why: Msg) => {
    const cached = await cachedVouchers();
    if (!alive.current) return;
    if (cached) {
      setList((l) => l ?? cached);
      setFromCache(true);
    } else {
      setLoadError(() => why);
    }
  }, []);

  /** Loads the list from the service; `sync` also refreshes the stored code keys. */
  const load = useCallback(
    async (sync: boolean): Promise<MyVoucher[] | null> => {
      if (!navigator.onLine) {
        await showCache((tt) => tt.network);
        return null;
      }
      try {
        const fresh = await api.myVouchers();
        if (!alive.current) return fresh;
        setList(fresh);
        setFromCache(false);
        setLoadError(null);
        void cacheVouchers(fresh);
        if (sync) void syncCodeKeys(fresh);
        return fresh;
      } catch (e) {
        if (alive.current && !isIdentityLoss(e)) await showCache(failureMsg(e));
        return null;
      }
    },
    [showCache],
  );

  useEffect(() => {
    alive.current = true;
    void (async () => {
      let fresh = await load(expect === null);
      if (expect === null || fresh === null) return;
      setWaiting(true);
      for (let i = 0; i < WAIT_TRIES && alive.current; i++) {
        if (fresh?.some((v) => v.voucher_id === expect)) break;
        await sleep(WAIT_MS);
        if (alive.current) fresh = await load(false);
      }
      if (fresh) void syncCodeKeys(fresh);
      if (alive.current) setWaiting(false);
    })();
    return () => {
      alive.current = false;
    };
  }, [load, expect]);

  const close = useCallback(
    (reason: CloseReason) => {
      setOpen(null);
      const back = opener.current;
      opener.current = null;
      if (back && back.isConnected) back.focus();
      // The voucher may have been spent (or expired) while its code was shown: always reload;
      // after a redemption the keys are re-synced too (the spent voucher's key is dropped).
      void load(reason !== "user");
    },
    [load],
  );

  const now = serverNow();
  const groups: Record<Group, MyVoucher[]> = { usable: [], used: [], expired: [] };
  for (const v of list ?? []) groups[groupOf(v, now)].push(v);
  const titles: Record<Group, string> = { usable: t.groupUsable, used: t.groupUsed, expired: t.groupExpired };

  return (
    <section aria-labelledby="vouchers-title">
      <h2 id="vouchers-title" class="view-title">
        {t.tabVouchers}
      </h2>
      {waiting && <p class="muted">{t.waitingVoucher}</p>}
      {fromCache && <p class="notice">{t.cachedList}</p>}
      {loadError && (
        <div class="notice">
          <p>{t.loadFailed(loadError(t))}</p>
          <button type="button" class="secondary-button" onClick={() => void load(true)}>
            {t.reload}
          </button>
        </div>
      )}
      {list === null && !loadError && <p class="muted">{t.loading}</p>}
      {list !== null && list.length === 0 && <p class="muted">{t.noVouchers}</p>}
      {list !== null &&
        list.length > 0 &&
        (["usable", "used", "expired"] as const).map((g) => (
          <div class="group" key={g}>
            <h3 class="group-title">
              {titles[g]} <span class="count">({groups[g].length})</span>
            </h3>
            {groups[g].length === 0 ? (
              <p class="muted secondary">{t.noneInGroup}</p>
            ) : (
              <ul class="cards">
                {groups[g].map((v) => (
                  <VoucherCard
                    key={v.voucher_id}
                    v={v}
                    now={now}
                    onShow={(el) => {
                      opener.current = el;
                      setOpen(v);
                    }}
                  />
                ))}
              </ul>
            )}
          </div>
        ))}
      {open && <CodeView voucher={open} say={say} onClose={close} />}
    </section>
  );
}

function VoucherCard({ v, now, onShow }: { v: MyVoucher; now: number; onShow: (el: HTMLElement) => void }) {
  const t = useT();
  const usable = isUsable(v);
  const notYet = v.status === "issued" && !v.usable && parseInstant(v.valid_from) > now;
  return (
    <li class={`card voucher voucher-${v.status}`} data-testid={`voucher-${v.voucher_id}`} data-status={v.status}>
      <div class="card-head">
        <h4 class="card-title">{v.campaign_name}</h4>
        <span class="tag">{categoryText(v.category, t)}</span>
      </div>
      <p class="rule">{ruleText(v.rule, t)}</p>
      <p class="meta">{t.validity(dateTimeBj(v.valid_from), dateTimeBj(v.valid_until))}</p>
      <p class="meta secondary">
        {t.round(v.round_no)} · {t.claimedAt(dateTimeBj(v.claimed_at))}
      </p>
      {usable ? (
        <button
          type="button"
          class="primary"
          data-testid="show-code"
          onClick={(ev) => onShow(ev.currentTarget as HTMLElement)}
        >
          {t.showCode}
        </button>
      ) : notYet ? (
        <p class="state">{t.notYetValid(dateTimeBj(v.valid_from))}</p>
      ) : v.status === "redeemed" ? (
        <p class="state">{t.statusRedeemed}</p>
      ) : (
        <p class="state">{t.statusExpired}</p>
      )}
    </li>
  );
}
