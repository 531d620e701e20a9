/**
 * One address type joins everything: specs, live objects, plan changes, state rows.
 * Spec addresses are `<type>.<name>` (e.g. `segment.vip_customers`); remote object addresses add the
 * provider: `customerio.segment.vip_customers`, i.e. `provider.type.name`, where `provider.type`
 * (`customerio.segment`) is the config kind. Both sort by the same total order, so every listing
 * and every rendered plan is deterministic.
 */

export interface Address {
  provider?: string;
  type: string;
  name: string;
}

export function formatAddress(a: Address): string {
  return a.provider ? `${a.provider}.${a.type}.${a.name}` : `${a.type}.${a.name}`;
}

export function parseAddress(s: string): Address | undefined {
  const parts = s.split('.');
  if (parts.length === 2 && parts.every((p) => p.length > 0)) return { type: parts[0]!, name: parts[1]! };
  if (parts.length === 3 && parts.every((p) => p.length > 0)) {
    return { provider: parts[0]!, type: parts[1]!, name: parts[2]! };
  }
  return undefined;
}

export function compareAddress(a: Address, b: Address): number {
  const ka = [a.provider ?? '', a.type, a.name];
  const kb = [b.provider ?? '', b.type, b.name];
  for (let i = 0; i < 3; i++) {
    if (ka[i]! < kb[i]!) return -1;
    if (ka[i]! > kb[i]!) return 1;
  }
  return 0;
}
