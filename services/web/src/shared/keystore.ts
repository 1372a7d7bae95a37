// Secrets in the browser are WebCrypto keys created non-extractable and kept in IndexedDB
// (a CryptoKey is stored as an object the page can use but never read back), never as text
// in localStorage.

const DB = "voucher-keys";
const STORE = "keys";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, run: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const req = run(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

/** Imports raw HMAC-SHA256 key bytes as a NON-extractable key (sign only). */
export function importHmacKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** Stores `value` (a CryptoKey or plain data) under `name`. */
export function put(name: string, value: unknown): Promise<IDBValidKey> {
  return tx("readwrite", (s) => s.put(value, name));
}

/** What is stored under `name`, if anything. */
export async function get<T>(name: string): Promise<T | undefined> {
  return (await tx("readonly", (s) => s.get(name))) as T | undefined;
}

/** Forgets `name`. */
export function remove(name: string): Promise<undefined> {
  return tx("readwrite", (s) => s.delete(name));
}

/** Every name stored. */
export async function names(): Promise<string[]> {
  return ((await tx("readonly", (s) => s.getAllKeys())) as IDBValidKey[]).map(String);
}

/** HMAC-SHA256 of `data` with `key`. */
export async function hmac(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data as BufferSource));
}

/** SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
}
