import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { ApiError } from '../api/client';
import { BASE, navigate } from '../router';

/** The API error's message when it concerns `field` (its `param` is the field or inside it). */
export function fieldError(error: ApiError | null, field: string): string | undefined {
  const p = error?.param;
  if (!error || !p) return undefined;
  return p === field || p.startsWith(`${field}.`) || p.startsWith(`${field}[`) ? error.message : undefined;
}

/** A labelled input; the API's complaint about it is shown right below and announced. */
export function Field(props: {
  label: string;
  name: string;
  error?: ApiError | null;
  hint?: string;
  children: (p: { id: string; name: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => ReactNode;
}) {
  const id = useId();
  const msg = fieldError(props.error ?? null, props.name);
  const described = [msg ? `${id}-err` : '', props.hint ? `${id}-hint` : ''].filter(Boolean).join(' ');
  return (
    <div className={`field${msg ? ' invalid' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      {props.children({ id, name: props.name, 'aria-invalid': !!msg, ...(described ? { 'aria-describedby': described } : {}) })}
      {props.hint && <small id={`${id}-hint`} className="hint">{props.hint}</small>}
      {msg && <small id={`${id}-err`} className="field-error" role="alert">{msg}</small>}
    </div>
  );
}

/** The error of a form that no field of it concerns (or any error when `fields` is empty). */
export function FormError({ error, fields = [] }: { error: ApiError | null; fields?: string[] }) {
  if (!error) return null;
  if (fields.some((f) => fieldError(error, f))) return null;
  return <ErrorNote error={error} />;
}

export function ErrorNote({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <p className="error-note" role="alert">
      <strong>{error.code}</strong>: {error.message}
      {error.body.permission ? <> (needs <code>{String(error.body.permission)}</code>)</> : null}
    </p>
  );
}

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  return (
    <a
      href={BASE + to}
      className={className}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

export function Badge({ kind, children }: { kind: 'ok' | 'busy' | 'error' | 'muted' | 'warn'; children: ReactNode }) {
  return <span className={`badge badge-${kind}`}>{children}</span>;
}

/** A button that asks first, in a modal dialog (focus moves into it; Escape cancels). */
export function ConfirmButton(props: { label: string; question: string; confirm: string; onConfirm: () => void | Promise<void>; danger?: boolean; disabled?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal?.();
    if (!open && d.open) d.close?.();
  }, [open]);
  return (
    <>
      <button type="button" className={props.danger ? 'danger' : ''} disabled={props.disabled} onClick={() => setOpen(true)}>{props.label}</button>
      <dialog ref={ref} onClose={() => setOpen(false)} aria-label={props.question}>
        {open && (
          <form method="dialog" onSubmit={(e) => e.preventDefault()}>
            <p>{props.question}</p>
            <div className="actions">
              <button type="button" autoFocus onClick={() => setOpen(false)}>Cancel</button>
              <button
                type="button"
                className={props.danger ? 'danger' : 'primary'}
                onClick={async () => {
                  setOpen(false);
                  await props.onConfirm();
                }}
              >
                {props.confirm}
              </button>
            </div>
          </form>
        )}
      </dialog>
    </>
  );
}

/** A secret the API shows exactly once (a password, an API key, a subscription secret). */
export function OneTimeSecret({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div className="secret" role="status">
      <p><strong>{label}</strong> — shown once: copy it now.</p>
      <code className="secret-value" data-testid="secret">{value}</code>
      <div className="actions">
        <button type="button" onClick={() => void navigator.clipboard?.writeText(value)}>Copy</button>
        <button type="button" onClick={onDone}>I have saved it</button>
      </div>
    </div>
  );
}

export function Progress({ value, label }: { value: number; label: string }) {
  const v = Math.max(0, Math.min(1, value));
  return (
    <div className="progress">
      <progress max={1} value={v} aria-label={label} />
      <span>{Math.round(v * 100)} %</span>
    </div>
  );
}

export function Page({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  useEffect(() => {
    document.title = `${title} — ROCKIT Edge console`;
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <h1 id="page-title" tabIndex={-1}>{title}</h1>
        {actions}
      </header>
      {children}
    </section>
  );
}
