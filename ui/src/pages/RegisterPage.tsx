import type { FormEvent } from "react";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { Alert, Button, TextField } from "../components/ui";
import { describeRegisterError } from "../lib/errors";
import { AuthShell } from "./AuthShell";

// The same rules as auth_svc/validation.py, checked here first so mistakes show at once.
const MIN_PASSWORD_CHARS = 8;
const MAX_PASSWORD_BYTES = 72;
const MAX_DISPLAY_NAME_CHARS = 100;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export function validateRegistration(email: string, password: string, displayName: string): Record<string, string> {
  const errors: Record<string, string> = {};
  const normalized = email.normalize("NFKC").trim().toLowerCase();
  if (!normalized) errors.email = "email is required";
  else if (normalized.length > 254 || !EMAIL.test(normalized)) errors.email = "email must look like name@example.com (at most 254 characters)";
  if ([...password].length < MIN_PASSWORD_CHARS) errors.password = `password must have at least ${MIN_PASSWORD_CHARS} characters`;
  else if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES)
    errors.password = `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)`;
  else if (password.trim() === "") errors.password = "password must not be only white space";
  if ([...displayName.normalize("NFKC").trim()].length > MAX_DISPLAY_NAME_CHARS)
    errors.displayName = `display name must be at most ${MAX_DISPLAY_NAME_CHARS} characters`;
  return errors;
}

export function RegisterPage() {
  const { register } = useAuth();
  const navigate = useNavigate();
  const [displayName, setDisplayName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    const errors = validateRegistration(email, password, displayName);
    setFieldErrors(errors);
    if (Object.keys(errors).length > 0) return;
    setBusy(true);
    try {
      await register(email, password, displayName);
      navigate("/login", { replace: true, state: { registered: email.trim().toLowerCase() } });
    } catch (caught) {
      setError(describeRegisterError(caught));
      setBusy(false);
    }
  }

  return (
    <AuthShell
      title="Create your account"
      subtitle="Resize, crop and convert images in the background."
      footer={
        <>
          Already have an account?{" "}
          <Link to="/login" className="font-semibold text-indigo-600 hover:text-indigo-500">
            Log in
          </Link>
        </>
      }
    >
      <form onSubmit={onSubmit} noValidate className="space-y-5" aria-label="Create account">
        {error && <Alert>{error}</Alert>}
        <TextField label="Name" name="displayName" autoComplete="name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} hint="Optional. Shown in the header." error={fieldErrors.displayName} autoFocus />
        <TextField label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fieldErrors.email} />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fieldErrors.password}
          hint="At least 8 characters."
        />
        <Button type="submit" busy={busy} className="w-full">
          Create account
        </Button>
      </form>
    </AuthShell>
  );
}
