import { isIP } from "node:net";

/**
 * Where ctx.fetch may go (SPEC 7): `http` and `https` only, and never to loopback,
 * link-local, private or otherwise special addresses (the server's own ports, a
 * cloud metadata service at 169.254.169.254, the LAN) unless
 * `functionRuntime.allowNetworks` lists them. The check is made on every address a
 * name resolves to, and the connection then goes to a checked address (fetch-proxy.ts),
 * so a name that resolves differently the second time gets nowhere new.
 */

/** A parsed CIDR block: address bytes (16 for IPv6, 4 for IPv4) and prefix length. */
interface Block {
  bytes: Uint8Array;
  prefix: number;
  label: string;
}

/** Addresses refused unless allowed: [CIDR, what it is]. */
const SPECIAL_V4: [string, string][] = [
  ["0.0.0.0/8", "this network"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared (carrier-grade NAT)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.0.2.0/24", "documentation"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
];
const SPECIAL_V6: [string, string][] = [
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["100::/64", "discard"],
  ["2001:db8::/32", "documentation"],
  ["fc00::/7", "private (unique local)"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "site-local"],
  ["ff00::/8", "multicast"],
];

const SPECIAL = [...SPECIAL_V4, ...SPECIAL_V6].map(([cidr, label]) => parseBlock(cidr, label));

/** The networks ctx.fetch may reach although they are special (from the config). */
export class FetchPolicy {
  private readonly allowed: Block[];

  /** Throws on a malformed entry, naming it. */
  constructor(allowNetworks: readonly string[] = []) {
    this.allowed = allowNetworks.map((cidr) => parseBlock(cidr, cidr));
  }

  /** Why ctx.fetch may not use this URL's scheme, or undefined when it may. */
  schemeProblem(url: URL): string | undefined {
    if (url.protocol === "http:" || url.protocol === "https:") return undefined;
    return `ctx.fetch allows http and https only, not ${url.protocol.replace(/:$/, "")}:`;
  }

  /** Why ctx.fetch may not connect to `address` (an IP), or undefined when it may. */
  addressProblem(address: string): string | undefined {
    const bytes = ipBytes(address);
    if (!bytes) return `${address} is not an IP address`;
    if (this.allowed.some((b) => contains(b, bytes))) return undefined;
    for (const candidate of withEmbeddedV4(bytes)) {
      const special = SPECIAL.find((b) => contains(b, candidate));
      if (special && !this.allowed.some((b) => contains(b, candidate))) {
        return (
          `ctx.fetch may not reach ${address} (${special.label}); ` +
          "list its network in functionRuntime.allowNetworks to allow it"
        );
      }
    }
    return undefined;
  }
}

/** Checks each entry of functionRuntime.allowNetworks; returns the problems (for config errors). */
export function allowNetworksProblems(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    try {
      parseBlock(e, e);
    } catch (err) {
      out.push((err as Error).message);
    }
  }
  return out;
}

function parseBlock(cidr: string, label: string): Block {
  const [address = "", prefixText] = cidr.trim().split("/");
  const bytes = ipBytes(address);
  const bad = () =>
    new Error(
      `functionRuntime.allowNetworks: ${JSON.stringify(cidr)} is not an IP address or CIDR block`,
    );
  if (!bytes) throw bad();
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > max ||
    (prefixText ?? "0").trim() === ""
  ) {
    throw bad();
  }
  return { bytes, prefix, label };
}

/** The address as bytes: 4 for IPv4, 16 for IPv6 (IPv4-mapped ones stay 16). */
function ipBytes(address: string): Uint8Array | undefined {
  const plain = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = isIP(plain);
  if (family === 4) return Uint8Array.from(plain.split(".").map(Number));
  if (family !== 6) return undefined;
  let text = plain;
  // A trailing dotted IPv4 part (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/**
 * The address itself and, for IPv6 forms that carry an IPv4 address (IPv4-mapped
 * ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16),
 * that IPv4 address too: each must be allowed.
 */
function withEmbeddedV4(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 4) return [bytes];
  const out = [bytes];
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) out.push(bytes.slice(12, 16));
  else if (zeros(0, 12) && !zeros(12, 16)) out.push(bytes.slice(12, 16));
  if (
    bytes[0] === 0x00 &&
    bytes[1] === 0x64 &&
    bytes[2] === 0xff &&
    bytes[3] === 0x9b &&
    zeros(4, 12)
  ) {
    out.push(bytes.slice(12, 16));
  }
  if (bytes[0] === 0x20 && bytes[1] === 0x02) out.push(bytes.slice(2, 6));
  return out;
}

function contains(block: Block, bytes: Uint8Array): boolean {
  if (block.bytes.length !== bytes.length) return false;
  let bits = block.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((block.bytes[i]! & mask) !== (bytes[i]! & mask)) return false;
  }
  return true;
}
