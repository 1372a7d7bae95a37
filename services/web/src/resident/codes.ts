// The dynamic code shown at checkout, computed on the phone so it works without a network.
//
// For each usable voucher the service hands over a 32-byte code key once (GET …/code-key).
// It is imported at once as a NON-extractable WebCrypto HMAC key and kept in IndexedDB under
// `code:<voucher_id>` with the signed voucher token; the raw bytes are zeroed and dropped.
// The code for a time step is
//
//   step = floor(unixSeconds / step_secs)            (server clock, see clock.ts)
//   mac  = HMAC-SHA256(key, step as 8-byte big-endian signed)[0..10], base64url, no padding
//   code = epoch > 0 ? token.epoch.mac : token.mac
//
// and a till accepts the current step ±1. Keys of vouchers that are no longer usable are
// deleted; a reset (revoke) replaces the key everywhere. The last vouchers list is cached
// beside the keys so the codes can be opened offline.

import { fromBase64Url, toBase64Url } from "../shared/base64url";
import { ApiFailure } from "../shared/http";
import * as keystore from "../shared/keystore";
import * as api from "./api";
import type { CodeKeyWire, MyVoucher } from "./types";

/** What is stored per voucher: everything needed to draw its code offline. */
export interface CodeKeyRecord {
  key: CryptoKey;
  token: string;
  step_secs: number;
  epoch: number;
  valid_until: string;
}

const MAC_BYTES = 10;
const CODE_PREFIX = "code:";
const LIST_KEY = "list:vouchers";

/** Bumped by every reset, so a list sync that raced a reset does not store the old key. */
const generation = new Map<string, number>();

export function isUsable(v: MyVoucher): boolean {
  return v.status === "issued" && v.usable;
}

/** Imports and stores a key the service sent; the raw bytes never outlive this call. */
export async function storeCodeKey(wire: CodeKeyWire, validUntil: string): Promise<CodeKeyRecord> {
  const raw = fromBase64Url(wire.key);
  let key: CryptoKey;
  try {
    key = await keystore.importHmacKey(raw);
  } finally {
    raw.fill(0);
  }
  const record: CodeKeyRecord = {
    key,
    token: wire.token,
    step_secs: wire.step_secs,
    epoch: wire.epoch,
    valid_until: validUntil,
  };
  try {
    await keystore.put(CODE_PREFIX + wire.voucher_id, record);
  } catch {
    // No IndexedDB (some private WebViews): the key still serves while this page is open.
  }
  return record;
}

export async function loadCodeKey(voucherId: string): Promise<CodeKeyRecord | undefined> {
  try {
    return await keystore.get<CodeKeyRecord>(CODE_PREFIX + voucherId);
  } catch {
    return undefined;
  }
}

export async function forgetCodeKey(voucherId: string): Promise<void> {
  try {
    await keystore.remove(CODE_PREFIX + voucherId);
  } catch {
    // Nothing stored, or no IndexedDB.
  }
}

/** A new key for `voucherId` from the service (the old one stops working at every till). */
export async function revokeAndStore(voucherId: string, validUntil: string): Promise<CodeKeyRecord> {
  generation.set(voucherId, (generation.get(voucherId) ?? 0) + 1);
  const wire = await api.revokeCodeKey(voucherId);
  return storeCodeKey(wire, validUntil);
}

/** The time step of `unixMs`. */
export function stepOf(unixMs: number, stepSecs: number): number {
  return Math.floor(Math.floor(unixMs / 1000) / stepSecs);
}

/** `step` as an 8-byte big-endian signed integer (no BigInt: Safari 14 lacks setBigInt64). */
export function stepMessage(step: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  const high = Math.floor(step / 4294967296);
  view.setInt32(0, high);
  view.setUint32(4, step - high * 4294967296);
  return out;
}

/** The code to show during `step`. */
export async function dynamicCode(record: CodeKeyRecord, step: number): Promise<string> {
  const tag = await keystore.hmac(record.key, stepMessage(step));
  const mac = toBase64Url(tag.slice(0, MAC_BYTES));
  return record.epoch > 0 ? `${record.token}.${record.epoch}.${mac}` : `${record.token}.${mac}`;
}

let syncing: Promise<void> | null = null;

/**
 * After an online load of the vouchers list: fetch (again) the key of every usable voucher,
 * so a key reset on another phone is picked up, and delete the keys of the others.
 */
export function syncCodeKeys(vouchers: MyVoucher[]): Promise<void> {
  syncing ??= runSync(vouchers).finally(() => {
    syncing = null;
  });
  return syncing;
}

async function runSync(vouchers: MyVoucher[]): Promise<void> {
  const usable = vouchers.filter(isUsable);
  const keep = new Set(usable.map((v) => CODE_PREFIX + v.voucher_id));
  try {
    for (const name of await keystore.names()) {
      if (name.startsWith(CODE_PREFIX) && !keep.has(name)) await keystore.remove(name);
    }
  } catch {
    // No IndexedDB: nothing was stored either.
  }
  const queue = usable.slice();
  const worker = async () => {
    for (let v = queue.shift(); v; v = queue.shift()) {
      const before = generation.get(v.voucher_id) ?? 0;
      try {
        const wire = await api.codeKey(v.voucher_id);
        if ((generation.get(v.voucher_id) ?? 0) === before) await storeCodeKey(wire, v.valid_until);
      } catch (e) {
        if (e instanceof ApiFailure && e.status === 401) return;
        // Otherwise keep whatever key was stored; the next list load tries again.
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

export async function cacheVouchers(list: MyVoucher[]): Promise<void> {
  try {
    await keystore.put(LIST_KEY, list);
  } catch {
    // Offline display is a convenience only.
  }
}

export async function cachedVouchers(): Promise<MyVoucher[] | undefined> {
  try {
    return await keystore.get<MyVoucher[]>(LIST_KEY);
  } catch {
    return undefined;
  }
}

/** Signing out: forget every key and the cached list. */
export async function forgetAll(): Promise<void> {
  try {
    for (const name of await keystore.names()) {
      if (name.startsWith(CODE_PREFIX) || name === LIST_KEY) await keystore.remove(name);
    }
  } catch {
    // No IndexedDB.
  }
}
