import type { FormEvent } from "react";
import { useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { Alert, Button, TextField } from "../components/ui";
import { describeLoginError } from "../lib/errors";
import { AuthShell } from "./AuthShell";

export function LoginPage() {
  const { login, notice } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const state = location.state as { from?: string; registered?: string } | null;
  const [email, setEmail] = useState(state?.registered ?? "");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    if (!email.trim() || !password) {
      setError("Enter your email and password.");
      return;
    }
    setBusy(true);
    try {
      await login(email, password);
      const from = state?.from;
      navigate(from && from.startsWith("/") && !from.startsWith("/login") ? from : "/", { replace: true });
    } catch (caught) {
      setError(describeLoginError(caught));
      setBusy(false);
    }
  }

  return (
    <AuthShell
      title="Log in to PixelFlow"
      subtitle="Process images at scale, watch them finish live."
      footer={
        <>
          New here?{" "}
          <Link to="/register" className="font-semibold text-indigo-600 hover:text-indigo-500">
            Create an account
          </Link>
        </>
      }
    >
      <form onSubmit={onSubmit} noValidate className="space-y-5" aria-label="Log in">
        {state?.registered && !error && <Alert kind="success">Your account is ready. Log in to continue.</Alert>}
        {notice && !error && !state?.registered && <Alert kind="info">{notice}</Alert>}
        {error && <Alert>{error}</Alert>}
        <TextField label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus={!email} />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoFocus={Boolean(email)}
        />
        <Button type="submit" busy={busy} className="w-full">
          Log in
        </Button>
      </form>
    </AuthShell>
  );
}
