import { makeRuleset, restrictSelf } from "./landlock.ts";
import { libc } from "./libc.ts";
import type { SandboxPlan, StageOneReport } from "./plan.ts";

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUTS = 0x04000000;

/**
 * Stage one of a function host: applies the plan the server made (namespaces, user,
 * Landlock), then replaces itself with the host (stage two) through execve. Doing it
 * this way round matters: Landlock confines only the thread that asks, and the Bun
 * runtime already runs several threads; after execve the one confined thread is all
 * there is, and every thread the host starts is born confined. The host inherits its
 * stdin and stdout (its channel to the server) and gets an empty environment.
 *
 * Anything that fails here that the server asked for ends the process (the server
 * logs it and tries again): a host never runs less confined than planned without
 * saying so, and never as root when a user was planned.
 */
export function confineAndExec(plan: SandboxPlan): never {
  const c = libc();
  if (!c) fail("cannot load libc: no sandbox is possible");
  const report: StageOneReport = { namespaces: false, landlockAbi: 0, missing: [] };
  // Opened while still root: the host's user may not be able to reach its path.
  const program = c.open(plan.exec[0]!, O_PATH | O_CLOEXEC);
  if (program < 0) fail(`cannot open ${plan.exec[0]} (errno ${c.errno()})`);
  if (plan.namespaces) {
    if (c.unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) === 0) report.namespaces = true;
    else report.missing.push(`network namespace (unshare failed, errno ${c.errno()})`);
  }
  // The rules open their paths: made while still root, applied after the switch.
  let ruleset: ReturnType<typeof makeRuleset> | undefined;
  if (plan.landlock) {
    try {
      ruleset = makeRuleset(c, [...plan.paths, ["/proc/self", "read"]]);
    } catch (err) {
      fail((err as Error).message);
    }
    report.landlockAbi = ruleset.abi;
    report.missing.push(...ruleset.missing);
  }
  if (plan.user) {
    const { uid, gid } = plan.user;
    if (c.setgroups() !== 0 || c.setresgid(gid) !== 0 || c.setresuid(uid) !== 0) {
      fail(`cannot switch to uid ${uid} gid ${gid} (errno ${c.errno()})`);
    }
    if (process.getuid?.() !== uid)
      fail(`still uid ${process.getuid?.()} after switching to ${uid}`);
    report.user = { uid, gid };
  }
  if (ruleset && "fd" in ruleset) {
    try {
      restrictSelf(c, ruleset);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  c.execFd(program, [...plan.exec, JSON.stringify(report)], []);
  fail(`cannot run ${plan.exec[0]} (errno ${c.errno()})`);
}

function fail(message: string): never {
  console.error(`function host sandbox: ${message}`);
  process.exit(78);
}
