/**
 * `new Response(…)` alone, in a loop, CPU time per call (issue 11): what the answer of a
 * request costs to build by how its headers and body are given. The headers are those
 * of a sluice answer: content-type, request id, X-RateLimit-Limit/Remaining/Reset.
 * Writing the answer out is not part of it (bench/experiments/answer-headers.ts is).
 *
 *   bun bench/experiments/response-init.ts [--count 200000] [--rounds 5]
 */
const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const count = Number(opt("count") ?? 200_000);
const rounds = Number(opt("rounds") ?? 5);
const JSON_TYPE = "application/json;charset=utf-8";
const OK = '{"ok":true,"success":true}';
const OK_BLOB = new Blob([OK], { type: JSON_TYPE });
const BATCH = {
  success: true,
  ok: true,
  received: 500,
  accepted: 500,
  duplicates: 0,
  rejected: [],
};
let seq = 0;
const four = (): Record<string, string> => ({
  "x-request-id": `a1b2c3d4-${(++seq).toString(36)}`,
  "x-ratelimit-limit": "1000000",
  "x-ratelimit-remaining": String(999_999 - (seq % 1000)),
  "x-ratelimit-reset": "1",
});
const withType = (h: Record<string, string>) => {
  h["content-type"] = JSON_TYPE;
  return h;
};
const prototype = new Headers({ "x-ratelimit-limit": "1000000", "content-type": JSON_TYPE });
const template = new Response(OK_BLOB, { headers: four() });

const cases: Record<string, () => unknown> = {
  "text, no headers": () => new Response(OK),
  "text, content-type only": () => new Response(OK, { headers: { "content-type": JSON_TYPE } }),
  "text, 5 headers (object)": () => new Response(OK, { status: 200, headers: withType(four()) }),
  "Blob with type, 4 headers (object)": () =>
    new Response(OK_BLOB, { status: 200, headers: four() }),
  "text, 5 headers (array of pairs)": () =>
    new Response(OK, { headers: Object.entries(withType(four())) }),
  "text, Headers copied from a prebuilt one + 3 set": () => {
    const h = new Headers(prototype);
    const v = four();
    h.set("x-request-id", v["x-request-id"]!);
    h.set("x-ratelimit-remaining", v["x-ratelimit-remaining"]!);
    h.set("x-ratelimit-reset", "1");
    return new Response(OK, { headers: h });
  },
  "prebuilt Response cloned + 3 set": () => {
    const res = template.clone();
    const v = four();
    res.headers.set("x-request-id", v["x-request-id"]!);
    res.headers.set("x-ratelimit-remaining", v["x-ratelimit-remaining"]!);
    res.headers.set("x-ratelimit-reset", "1");
    return res;
  },
  "batch JSON text, 5 headers": () =>
    new Response(JSON.stringify(BATCH), { headers: withType(four()) }),
  "batch JSON in a typed Blob, 4 headers": () =>
    new Response(new Blob([JSON.stringify(BATCH)], { type: JSON_TYPE }), { headers: four() }),
};

const results = new Map<string, number[]>();
for (let round = 0; round < rounds; round++)
  for (const [name, make] of Object.entries(cases)) {
    for (let i = 0; i < 2000; i++) make();
    const cpu = process.cpuUsage();
    for (let i = 0; i < count; i++) make();
    const used = process.cpuUsage(cpu);
    (results.get(name) ?? results.set(name, []).get(name)!).push(
      ((used.user + used.system) * 1000) / count,
    );
  }
for (const [name, ns] of results) {
  const sorted = [...ns].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(50)} median ${Math.round(sorted[sorted.length >> 1]!)} ns per Response`,
  );
}
