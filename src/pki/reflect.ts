// @peculiar/x509 resolves its algorithm plugins through tsyringe, which refuses
// to load unless a Reflect metadata API exists. Nothing in this project reads
// decorator metadata, so a minimal store is enough; a real polyfill
// (reflect-metadata) installed before this module is left in place.
type MetadataStore = WeakMap<object, Map<unknown, unknown>>;
type ReflectMetadata = {
  defineMetadata(key: unknown, value: unknown, target: object): void;
  getOwnMetadata(key: unknown, target: object): unknown;
  getMetadata(key: unknown, target: object): unknown;
};

const reflect = Reflect as typeof Reflect & Partial<ReflectMetadata>;

if (typeof reflect.getMetadata !== 'function') {
  const store: MetadataStore = new WeakMap();
  const own = (key: unknown, target: object): unknown => store.get(target)?.get(key);
  const metadata: ReflectMetadata = {
    defineMetadata(key, value, target) {
      let entries = store.get(target);
      if (!entries) store.set(target, (entries = new Map()));
      entries.set(key, value);
    },
    getOwnMetadata: own,
    getMetadata(key, target) {
      for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
        const value = own(key, t);
        if (value !== undefined) return value;
      }
      return undefined;
    },
  };
  Object.assign(Reflect, metadata);
}
