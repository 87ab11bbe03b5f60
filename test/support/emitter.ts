// A Source whose events a unit test emits by hand (the per-event cost tests feed indexes with it).
import type { Source, SourceEvent } from '../../src/controller/controller.ts';

export class Emitter<T> implements Source<T> {
  readonly #listeners: Array<(e: SourceEvent<T>) => void> = [];
  subscribe(l: (e: SourceEvent<T>) => void): void {
    this.#listeners.push(l);
  }
  emit(e: SourceEvent<T>): void {
    for (const l of this.#listeners) l(e);
  }
}
