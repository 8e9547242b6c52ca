import { type JSX, render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { type Access, Api, ApiError, type SourceView } from "./api.ts";
import { ConnectionsView } from "./connections.tsx";
import { DetailView } from "./detail.tsx";
import { LiveView } from "./live.tsx";
import { SearchView } from "./search.tsx";
import { SourcesView } from "./sources.tsx";

const TOKEN_KEY = "sluice.adminToken";
const THEME_KEY = "sluice.theme";

/** `#/search?userId=u` → { view: "search", args: [], query: { userId: "u" } }. */
function parseHash(hash: string) {
  const [path = "", search = ""] = hash.replace(/^#\/?/, "").split("?");
  const [view = "live", ...args] = path.split("/").map(decodeURIComponent);
  return { view: view || "live", args, query: Object.fromEntries(new URLSearchParams(search)) };
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parseHash(hash);
}

const TABS = [
  { view: "live", label: "Live" },
  { view: "search", label: "Search" },
  { view: "connections", label: "Connections" },
  { view: "sources", label: "Sources" },
];

function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [access, setAccess] = useState<Access | null>(null);
  const [needToken, setNeedToken] = useState(false);
  const [fatal, setFatal] = useState<string | null>(null);
  const [sources, setSources] = useState<SourceView[]>([]);
  const route = useHash();

  const api = useMemo(
    () =>
      new Api(
        () => token,
        () => setNeedToken(true),
      ),
    [token],
  );

  useEffect(() => {
    setAccess(null);
    api
      .get<Access>("/admin/api/me")
      .then((a) => {
        setAccess(a);
        setNeedToken(false);
        return api.get<{ sources: SourceView[] }>("/admin/api/sources");
      })
      .then((r) => setSources(r.sources))
      .catch((err) => {
        if (err instanceof ApiError && err.status === 401) setNeedToken(true);
        else setFatal(err instanceof Error ? err.message : String(err));
      });
  }, [api]);

  const signIn = (value: string, remember: boolean) => {
    sessionStorage.setItem(TOKEN_KEY, value);
    if (remember) localStorage.setItem(TOKEN_KEY, value);
    setToken(value);
  };
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setNeedToken(true);
  };

  let body: JSX.Element;
  if (fatal) {
    body = (
      <p class="error" role="alert">
        {fatal}
      </p>
    );
  } else if (needToken) {
    body = <SignIn wrong={token !== null} onSignIn={signIn} />;
  } else if (!access) {
    body = <p class="empty">Connecting…</p>;
  } else if (route.view === "search") {
    body = <SearchView api={api} sources={sources} initial={route.query} />;
  } else if (route.view === "event" && route.args.length === 2) {
    body = <DetailView api={api} sourceId={route.args[0]!} messageId={route.args[1]!} />;
  } else if (route.view === "connections") {
    body = <ConnectionsView api={api} />;
  } else if (route.view === "sources") {
    body = <SourcesView api={api} />;
  } else {
    body = <LiveView api={api} sources={sources} />;
  }

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/live">
          sluice <span>inspector</span>
        </a>
        {access ? (
          <nav aria-label="Views">
            {TABS.map((t) => (
              <a
                key={t.view}
                href={`#/${t.view}`}
                aria-current={route.view === t.view ? "page" : undefined}
              >
                {t.label}
              </a>
            ))}
          </nav>
        ) : null}
        <div class="top-end">
          <ThemeToggle />
          {access?.via === "token" ? (
            <button type="button" class="link" onClick={signOut}>
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <main id="main">{body}</main>
    </>
  );
}

function SignIn({
  wrong,
  onSignIn,
}: {
  wrong: boolean;
  onSignIn: (t: string, remember: boolean) => void;
}) {
  const [value, setValue] = useState("");
  const [remember, setRemember] = useState(false);
  return (
    <section class="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in to the inspector</h1>
      <p>
        Enter an admin token. Make one on the server with <code>sluice admin token create</code>; it
        is shown once, and the config file keeps only its hash.
      </p>
      {wrong ? (
        <p class="error" role="alert">
          That token was not accepted.
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onSignIn(value.trim(), remember);
        }}
      >
        <label>
          Admin token
          <input
            type="password"
            name="token"
            autoComplete="current-password"
            required
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        <label class="inline">
          <input type="checkbox" checked={remember} onChange={() => setRemember(!remember)} />
          Remember on this device
        </label>
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </section>
  );
}

function ThemeToggle() {
  const [theme, setTheme] = useState(() => localStorage.getItem(THEME_KEY) ?? "auto");
  useEffect(() => {
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  return (
    <label class="theme">
      <span class="sr-only">Theme</span>
      <select value={theme} onChange={(e) => setTheme(e.currentTarget.value)}>
        <option value="auto">Auto theme</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

const saved = localStorage.getItem(TOKEN_KEY);
if (saved && !sessionStorage.getItem(TOKEN_KEY)) sessionStorage.setItem(TOKEN_KEY, saved);
render(<App />, document.getElementById("app")!);
