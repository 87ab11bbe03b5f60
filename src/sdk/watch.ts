// Noticing that mounted files changed. fs.watch on the directories catches
// most updates at once; inotify does not reliably report a symlink swap on
// every filesystem, so a slow poll backs it up. Neither keeps the process alive.
import { type FSWatcher, watch } from 'node:fs';

export function watchDirectories(dirs: readonly string[], onChange: () => void, pollIntervalMs: number): () => void {
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(dirs)) {
    try {
      const w = watch(dir, { persistent: false }, onChange);
      // A vanished directory ends this watcher; the poll carries on.
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // Not watchable here (e.g. missing for now): the poll covers it.
    }
  }
  const timer = setInterval(onChange, pollIntervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const w of watchers) w.close();
  };
}
