import type { ReactNode } from "react";
import { Suspense, lazy } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { Logo } from "./components/icons";
import { Spinner } from "./components/ui";
import { DashboardPage } from "./pages/DashboardPage";
import { LoginPage } from "./pages/LoginPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { RegisterPage } from "./pages/RegisterPage";
import { TaskPage } from "./pages/TaskPage";
import { WebhooksPage } from "./pages/WebhooksPage";
import { WorkersPage } from "./pages/WorkersPage";

// The new-task page carries the request validator (protovalidate's CEL and RE2, ~300 KB): it is
// loaded when first opened, not with the app.
const SubmitPage = lazy(() => import("./pages/SubmitPage").then((module) => ({ default: module.SubmitPage })));
// So does the presets page (the same builder, the same validator).
const PresetsPage = lazy(() => import("./pages/PresetsPage").then((module) => ({ default: module.PresetsPage })));

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<AnonymousOnly><LoginPage /></AnonymousOnly>} />
      <Route path="/register" element={<AnonymousOnly><RegisterPage /></AnonymousOnly>} />
      <Route element={<Protected><Layout /></Protected>}>
        <Route index element={<DashboardPage />} />
        <Route path="tasks/new" element={<Suspense fallback={<PageLoading />}><SubmitPage /></Suspense>} />
        <Route path="tasks/:taskId" element={<TaskPage />} />
        <Route path="presets" element={<Suspense fallback={<PageLoading />}><PresetsPage /></Suspense>} />
        <Route path="workers" element={<WorkersPage />} />
        <Route path="settings/webhooks" element={<WebhooksPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}

function Protected({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  if (status === "restoring") return <Splash />;
  if (status === "signed-out") return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return children;
}

function AnonymousOnly({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from;
  if (status === "restoring") return <Splash />;
  if (status === "signed-in") return <Navigate to={from && from.startsWith("/") ? from : "/"} replace />;
  return children;
}

function PageLoading() {
  return (
    <div className="flex items-center gap-2 p-6 text-sm text-slate-500" role="status" aria-live="polite">
      <Spinner className="h-4 w-4" /> Loading…
    </div>
  );
}

function Splash() {
  return (
    <div className="grid min-h-screen place-items-center" role="status" aria-live="polite">
      <div className="flex flex-col items-center gap-3 text-slate-500">
        <Logo className="h-10 w-10" />
        <div className="flex items-center gap-2 text-sm">
          <Spinner className="h-4 w-4" /> Restoring your session…
        </div>
      </div>
    </div>
  );
}
