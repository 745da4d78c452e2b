// Notices this machine's addresses changing (a new Wi-Fi, a VPN, a resume):
// the ssh chain was opened from an address that may be gone, and its
// keepalives would take 45 s to say so. A change only prompts a check.
// Node has no event for it (no netlink), so it is polled; a look is cheap.
import { networkInterfaces } from 'node:os';

/** This machine's addresses, as one comparable string. */
export function localAddresses(): string {
  const all = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
  return all.sort().join(' ');
}

/** Whether `address` is still one of this machine's. */
export function isLocalAddress(address: string): boolean {
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === address));
}

/** Calls `onChange` when the set of local addresses changes; returns the function that stops watching. */
export function watchLocalAddresses(onChange: () => void, everyMs = 1000): () => void {
  let last = localAddresses();
  const timer = setInterval(() => {
    const now = localAddresses();
    if (now === last) return;
    last = now;
    onChange();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
