import { expect, test } from "bun:test";
import { allowNetworksProblems, FetchPolicy } from "../../src/functions/fetch-policy.ts";

// SPEC 7: ctx.fetch refuses loopback, link-local and private addresses unless
// functionRuntime.allowNetworks lists them; the check is on the address.

const refused = (policy: FetchPolicy, address: string) => policy.addressProblem(address);

test("special addresses are refused by default, public ones are not", () => {
  const p = new FetchPolicy();
  for (const a of [
    "127.0.0.1",
    "127.1.2.3",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    // IPv6 forms that carry an IPv4 address are judged by it too.
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
  ]) {
    expect({ a, problem: refused(p, a) }).toEqual({
      a,
      problem: expect.stringContaining("may not reach"),
    });
  }
  for (const a of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) {
    expect({ a, problem: refused(p, a) }).toEqual({ a, problem: undefined });
  }
  expect(refused(p, "169.254.169.254")).toBe(
    "ctx.fetch may not reach 169.254.169.254 (link-local); list its network in functionRuntime.allowNetworks to allow it",
  );
});

test("allowNetworks opens exactly the listed blocks", () => {
  const p = new FetchPolicy(["10.20.0.0/16", "127.0.0.1", "fd00::/8"]);
  expect(refused(p, "10.20.3.4")).toBeUndefined();
  expect(refused(p, "10.21.0.1")).toContain("private");
  expect(refused(p, "127.0.0.1")).toBeUndefined();
  expect(refused(p, "::ffff:127.0.0.1")).toBeUndefined();
  expect(refused(p, "127.0.0.2")).toContain("loopback");
  expect(refused(p, "fd12::1")).toBeUndefined();
  expect(refused(p, "::1")).toContain("loopback");
});

test("only http and https", () => {
  const p = new FetchPolicy();
  expect(p.schemeProblem(new URL("https://example.com"))).toBeUndefined();
  expect(p.schemeProblem(new URL("http://example.com"))).toBeUndefined();
  for (const u of ["file:///etc/passwd", "ftp://x/", "data:text/plain,hi", "ws://x/", "blob:x"]) {
    expect(p.schemeProblem(new URL(u))).toContain("allows http and https only");
  }
});

test("malformed allowNetworks entries are named", () => {
  expect(allowNetworksProblems(["10.0.0.0/8", "::1/128"])).toEqual([]);
  expect(allowNetworksProblems(["10.0.0.0/33", "example.com", "1.2.3.4/", "::1/129"])).toEqual([
    'functionRuntime.allowNetworks: "10.0.0.0/33" is not an IP address or CIDR block',
    'functionRuntime.allowNetworks: "example.com" is not an IP address or CIDR block',
    'functionRuntime.allowNetworks: "1.2.3.4/" is not an IP address or CIDR block',
    'functionRuntime.allowNetworks: "::1/129" is not an IP address or CIDR block',
  ]);
});
