import { useEffect, useRef, useState } from "react";
import type { Store } from "../store/store";
import { describeError, type ChatSession } from "../session";
import type { SyncStatus } from "../sync/loop";

/**
 * Loads data from the store, and again after every write to it: the view always shows what is
 * on disk (written first, shown second). The previous value stays on screen while reloading.
 */
export function useStoreData<T>(store: Store, load: () => Promise<T>, deps: unknown[]): T | undefined {
  const [value, setValue] = useState<T | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    let generation = 0;
    const reload = () => {
      const mine = ++generation;
      loadRef
        .current()
        .then((next) => {
          if (live && mine === generation) setValue(next);
        })
        .catch((error: unknown) => console.error("Could not read the store", error));
    };
    reload();
    const unsubscribe = store.subscribe(reload);
    return () => {
      live = false;
      unsubscribe();
    };
  }, [store, ...deps]);
  return value;
}

export function useSyncStatus(session: ChatSession): SyncStatus {
  const [status, setStatus] = useState<SyncStatus>(session.status);
  useEffect(() => {
    setStatus(session.status);
    return session.onStatus(setStatus);
  }, [session]);
  return status;
}

export function useBrowserOnline(): boolean {
  const [online, setOnline] = useState(typeof navigator === "undefined" ? true : navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener("online", update);
    window.addEventListener("offline", update);
    return () => {
      window.removeEventListener("online", update);
      window.removeEventListener("offline", update);
    };
  }, []);
  return online;
}

/** Matches a CSS media query, e.g. the narrow layout. */
export function useMediaQuery(query: string): boolean {
  const [matches, setMatches] = useState(() =>
    typeof window === "undefined" ? false : window.matchMedia(query).matches,
  );
  useEffect(() => {
    const list = window.matchMedia(query);
    const update = () => setMatches(list.matches);
    update();
    list.addEventListener("change", update);
    return () => list.removeEventListener("change", update);
  }, [query]);
  return matches;
}

/** Runs an action with busy and error state (dialogs, banners). */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}
