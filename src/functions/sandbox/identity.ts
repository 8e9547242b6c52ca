import { readFileSync } from "node:fs";

/** The user the function host runs as. */
export interface HostUser {
  name: string;
  uid: number;
  gid: number;
}

/** The dedicated user sluice creates (as root) when none is configured. */
export const FUNCTION_USER = "sluice-fn";

/** Whom the host runs as, and what to say about it at start. */
export interface UserChoice {
  /** Undefined: the server's own user (the server is not root). */
  user?: HostUser;
  /** Lines for the start-up log (info: what was chosen or created; warn: what is weaker). */
  info: string[];
  warnings: string[];
}

/**
 * Chooses the function host's user (SPEC 7: functions cannot read the config or the
 * data dir). As root: `functionRuntime.user` if set (never root itself), else the
 * dedicated user `sluice-fn`, created with `useradd --system` if missing, else
 * `nobody` with a warning. Not root: the server's own user (switching needs root),
 * which Landlock then keeps from the server's files. Throws on a configured user that
 * does not exist, is root, or cannot be switched to.
 */
export function chooseFunctionUser(
  configured: string | undefined,
  passwd = "/etc/passwd",
): UserChoice {
  const root = process.getuid?.() === 0;
  if (!root) {
    if (configured !== undefined) {
      throw new Error(
        `functionRuntime.user: switching to ${configured} needs the server to run as root`,
      );
    }
    return {
      info: [],
      warnings: [
        "functions run as the server's own user (the server is not root, so it cannot switch): " +
          "only Landlock keeps them from the server's files",
      ],
    };
  }
  if (configured !== undefined) {
    const user = lookupUser(configured, passwd);
    if (!user) throw new Error(`functionRuntime.user: no such user ${configured}`);
    if (user.uid === 0) throw new Error("functionRuntime.user: functions must not run as root");
    return { user, info: [], warnings: [] };
  }
  const existing = lookupUser(FUNCTION_USER, passwd);
  if (existing) return { user: existing, info: [], warnings: [] };
  const created = createSystemUser(FUNCTION_USER, passwd);
  if (created) {
    return {
      user: created,
      info: [`created the system user ${FUNCTION_USER} (uid ${created.uid}) to run functions as`],
      warnings: [],
    };
  }
  const nobody = lookupUser("nobody", passwd) ?? { name: "nobody", uid: 65534, gid: 65534 };
  return {
    user: nobody,
    info: [],
    warnings: [
      `no user ${FUNCTION_USER} and useradd could not create it: functions run as nobody, ` +
        `which other services may share; create ${FUNCTION_USER} (useradd --system ${FUNCTION_USER})`,
    ],
  };
}

/** A user by name or numeric uid from /etc/passwd (no NSS, no subprocess). */
export function lookupUser(user: string, passwd = "/etc/passwd"): HostUser | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    text = "";
  }
  for (const line of text.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name && (name === user || uid === user))
      return { name, uid: Number(uid), gid: Number(gid) };
  }
  if (/^\d+$/.test(user)) return { name: user, uid: Number(user), gid: Number(user) };
  return undefined;
}

/**
 * Creates a system user with its own group, no home and no login shell. Another
 * sluice starting at the same moment may create it first: then that one is used.
 */
function createSystemUser(name: string, passwd: string): HostUser | undefined {
  for (const useradd of ["/usr/sbin/useradd", "/sbin/useradd"]) {
    let ran: { exitCode: number | null };
    try {
      ran = Bun.spawnSync(
        [
          useradd,
          "--system",
          "--user-group",
          "--no-create-home",
          "--home-dir",
          "/nonexistent",
          "--shell",
          "/usr/sbin/nologin",
          "--comment",
          "sluice functions",
          name,
        ],
        { stdio: ["ignore", "ignore", "ignore"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
      );
    } catch {
      continue;
    }
    void ran;
    for (let attempt = 0; attempt < 20; attempt++) {
      const user = lookupUser(name, passwd);
      if (user) return user;
      Bun.sleepSync(50);
    }
  }
  return undefined;
}
