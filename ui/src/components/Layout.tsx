import { useEffect } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { BellIcon, LayersIcon, ListIcon, Logo, LogoutIcon, PlusIcon, ServerIcon } from "./icons";
import { FOCUS_RING } from "./ui";

// `short` is what a phone shows (four full labels do not fit 360 px beside the account menu).
const NAV = [
  { to: "/", label: "Tasks", short: "Tasks", icon: ListIcon, end: true },
  { to: "/tasks/new", label: "New task", short: "New", icon: PlusIcon, end: true },
  { to: "/presets", label: "Presets", short: "Presets", icon: LayersIcon, end: true },
  { to: "/workers", label: "Workers", short: "Workers", icon: ServerIcon, end: true },
  { to: "/settings/webhooks", label: "Webhooks", short: "Hooks", icon: BellIcon, end: true },
];

export function Layout() {
  const { user, logout } = useAuth();
  const navigate = useNavigate();
  const { pathname } = useLocation();
  // A new page starts at its top (the router keeps the scroll position otherwise).
  useEffect(() => {
    window.scrollTo(0, 0);
  }, [pathname]);
  const name = user?.displayName || user?.email || "";
  const initials = (user?.displayName || user?.email || "?")
    .split(/[\s@.]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((part) => part[0]?.toUpperCase())
    .join("");

  async function onLogout() {
    await logout();
    navigate("/login", { replace: true });
  }

  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded-md focus:bg-white focus:px-3 focus:py-2 focus:shadow">
        Skip to content
      </a>
      <header className="sticky top-0 z-30 border-b border-slate-200 bg-white/90 backdrop-blur">
        <div className="mx-auto flex h-14 max-w-6xl items-center gap-2 px-3 sm:gap-4 sm:px-6">
          <NavLink to="/" className={`flex shrink-0 items-center gap-2 rounded-md ${FOCUS_RING}`} aria-label="PixelFlow home">
            <Logo className="h-7 w-7" />
            <span className="hidden text-base font-bold tracking-tight text-slate-900 sm:inline">PixelFlow</span>
          </NavLink>
          <nav aria-label="Main" className="flex min-w-0 flex-1 items-center gap-0.5 overflow-x-auto [scrollbar-width:none] sm:ml-4 sm:gap-1">
            {NAV.map(({ to, label, short, icon: Icon, end }) => (
              <NavLink
                key={to}
                to={to}
                end={end}
                aria-label={label}
                className={({ isActive }) =>
                  `flex shrink-0 items-center gap-1.5 rounded-lg px-1.5 py-1.5 text-sm font-medium whitespace-nowrap sm:px-3 ${FOCUS_RING} ${
                    isActive ? "bg-indigo-50 text-indigo-700" : "text-slate-600 hover:bg-slate-100 hover:text-slate-900"
                  }`
                }
              >
                <Icon className="hidden h-4 w-4 sm:block" />
                <span className="sm:hidden">{short}</span>
                <span className="hidden sm:inline">{label}</span>
              </NavLink>
            ))}
          </nav>
          <div className="flex shrink-0 items-center gap-2">
            <div className="hidden text-right leading-tight md:block">
              <p className="max-w-48 truncate text-sm font-medium text-slate-900" data-testid="user-name">
                {name}
              </p>
              {user?.displayName && <p className="max-w-48 truncate text-xs text-slate-500">{user.email}</p>}
            </div>
            <span className="grid h-8 w-8 place-items-center rounded-full bg-indigo-100 text-xs font-bold text-indigo-700" title={name} aria-hidden="true">
              {initials}
            </span>
            <button
              type="button"
              onClick={onLogout}
              className={`flex items-center gap-1.5 rounded-lg px-2 py-1.5 text-sm font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900 ${FOCUS_RING}`}
            >
              <LogoutIcon className="h-4 w-4" />
              <span className="hidden sm:inline">Log out</span>
              <span className="sr-only sm:hidden">Log out</span>
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-3 py-6 sm:px-6 sm:py-8">
        <Outlet />
      </main>
    </div>
  );
}
