// client-go's Indexer: the objects of one source grouped by a key computed
// from each, kept from the source's own events. A mapper or a reconcile that
// asks "which identities name this ServiceAccount / Secret / TrustDomain?"
// reads one group instead of filtering every cached object.
import { objectKey, type KubeObject, type Source } from './controller.ts';

export class Indexer<T extends KubeObject> {
  readonly #keyOf: (o: T) => string;
  /** Index key → object key → the object as last delivered. */
  readonly #groups = new Map<string, Map<string, T>>();
  readonly #filed = new Map<string, string>();

  /** Subscribes at once, so the index includes the initial list. */
  constructor(source: Source<T>, keyOf: (o: T) => string) {
    this.#keyOf = keyOf;
    source.subscribe((e) => (e.type === 'delete' ? this.#drop(objectKey(e.obj)) : this.#put(e.obj)));
  }

  /** The objects filed under `key`. */
  of(key: string): T[] {
    return [...this.#groups.get(key)?.values() ?? []];
  }

  #put(o: T): void {
    const key = objectKey(o);
    const at = this.#keyOf(o);
    if (this.#filed.get(key) !== at) this.#drop(key);
    this.#filed.set(key, at);
    let group = this.#groups.get(at);
    if (!group) this.#groups.set(at, group = new Map());
    group.set(key, o);
  }

  #drop(key: string): void {
    const at = this.#filed.get(key);
    if (at === undefined) return;
    this.#filed.delete(key);
    const group = this.#groups.get(at)!;
    group.delete(key);
    if (group.size === 0) this.#groups.delete(at);
  }
}
