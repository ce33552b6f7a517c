import { useEffect, useId, useRef, type FormEvent, type ReactNode } from "react";

interface Props {
  title: string;
  submitLabel: string;
  busy?: boolean;
  /** The submit button does something that cannot be undone (leave...). */
  danger?: boolean;
  error?: string | undefined;
  onSubmit: () => void;
  onClose: () => void;
  children: ReactNode;
}

/** A modal form on the native <dialog>: focus is trapped, Escape closes it. */
export function Modal({ title, submitLabel, busy, danger, error, onSubmit, onClose, children }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    // No close() on cleanup: the element leaving the page closes it, and a close event fired
    // from a cleanup (StrictMode runs effects twice) would dismiss the dialog that remains.
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSubmit();
  };
  return (
    <dialog ref={ref} className="modal" aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <form onSubmit={submit}>
        <h2 id={titleId}>{title}</h2>
        {children}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="modal-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className={danger ? "danger" : "primary"} disabled={busy}>
            {busy ? "Please wait…" : submitLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
