import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from './api/client';

/**
 * Loads `fn` now and every `intervalMs` (so nothing needs a reload to be current); `reload` loads
 * at once. Keeps the last good data while a later poll fails.
 */
export function usePoll<T>(fn: () => Promise<T>, intervalMs: number, deps: unknown[]): { data: T | undefined; error: ApiError | null; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError | null>(null);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const d = await fnRef.current();
        if (alive) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (alive) setError(e instanceof ApiError ? e : new ApiError(0, { status: 'error', error: 'internal', message: String(e) }));
      }
      if (alive && intervalMs > 0) timer = setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      alive = false;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick, intervalMs]);
  return { data, error, reload };
}

/** State of a form's submission: busy, and the API error (shown next to the field it names). */
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = useCallback(async (fn: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, { status: 'error', error: 'internal', message: (e as Error).message }));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}
