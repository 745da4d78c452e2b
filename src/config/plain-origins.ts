// Where each value of a plain YAML file was written, kept as offsets in a few
// flat lists and turned into file:line:column only when asked. A Map from
// JSON pointer to position for every value, as source.ts keeps, costs more
// than reading a file of 20 000 hosts, and a valid file needs a handful of
// them (the `file:line` of a route's hosts). Lookups and iteration give what
// that Map would hold, in its order.
import type { Origin, Origins, Position } from './source.js';
import { pointer } from './source.js';

/** Whole numbers in one typed array grown by doubling: a million of them leave nothing for the GC to walk. */
class IntList {
  private data = new Int32Array(1024);
  length = 0;

  push(n: number): void {
    if (this.length === this.data.length) {
      const more = new Int32Array(this.length * 2);
      more.set(this.data);
      this.data = more;
    }
    this.data[this.length++] = n;
  }

  at(i: number): number {
    return this.data[i] ?? -1;
  }
}

export class PlainOrigins implements Origins {
  /** Per value, in document order (parents before children): its key's offset (-1 for none), its own, its parent's index, its key or index. */
  private readonly keyAt = new IntList();
  private readonly valueAt = new IntList();
  private readonly parentOf = new IntList();
  private readonly nameOf: (string | number)[] = [];
  /** A map's or list's values, by index; a map's names → the last value of each, made when first looked up. */
  private readonly kids = new Map<number, number[]>();
  private lastParent = -1;
  private lastKids: number[] = [];
  private readonly byName = new Map<number, Map<string, number>>();
  private readonly lineStarts = new IntList();
  private all: Map<string, Origin> | undefined;

  constructor(private readonly file: string) {}

  /** The next line starts here; lines are given in order. */
  line(offset: number): void {
    this.lineStarts.push(offset);
  }

  /** A value of `parent` (-1 for the whole file) under `name`; returns its index. */
  add(parent: number, name: string | number, keyAt: number, valueAt: number): number {
    const node = this.valueAt.length;
    this.keyAt.push(keyAt);
    this.valueAt.push(valueAt);
    this.parentOf.push(parent);
    this.nameOf.push(name);
    if (parent >= 0) {
      // Values of one map or list mostly come one after another.
      if (parent !== this.lastParent) {
        this.lastParent = parent;
        this.lastKids = this.kids.get(parent) ?? [];
        this.kids.set(parent, this.lastKids);
      }
      this.lastKids.push(node);
    }
    return node;
  }

  /** The line of the latest key `name` of map `parent` so far, for a duplicate key's message. */
  lineOfKey(parent: number, name: string): number | undefined {
    const list = this.kids.get(parent) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const node = list[i] ?? 0;
      if (this.nameOf[node] === name) return this.position(this.keyAt.at(node)).line;
    }
    return undefined;
  }

  position(offset: number): Position {
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts.at(mid) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, column: offset - starts.at(lo) + 1 };
  }

  get(ptr: string): Origin | undefined {
    if (this.all) return this.all.get(ptr);
    const node = this.find(ptr);
    return node === undefined ? undefined : this.origin(node);
  }

  has(ptr: string): boolean {
    return this.get(ptr) !== undefined;
  }

  /** Every pointer with its origin, as the Map of source.ts would hold them (a later duplicate key overrides). */
  [Symbol.iterator](): MapIterator<[string, Origin]> {
    if (!this.all) {
      const all = new Map<string, Origin>();
      const ptrs: string[] = [];
      for (let node = 0; node < this.valueAt.length; node++) {
        const parent = this.parentOf.at(node);
        const ptr = parent < 0 ? '' : pointer(ptrs[parent] ?? '', this.nameOf[node] ?? '');
        ptrs.push(ptr);
        all.set(ptr, this.origin(node));
      }
      this.all = all;
    }
    return this.all[Symbol.iterator]();
  }

  /** Once a duplicate key is found, lookups answer from the whole Map: the walk down by name knows one of the two. */
  settle(): void {
    void [...this];
  }

  private origin(node: number): Origin {
    const key = this.keyAt.at(node);
    const value = this.position(this.valueAt.at(node));
    return key < 0 ? { value } : { value, key: this.position(key) };
  }

  private find(ptr: string): number | undefined {
    if (this.valueAt.length === 0) return undefined;
    if (ptr === '') return 0;
    let node = 0;
    for (const raw of ptr.split('/').slice(1)) {
      const seg = raw.includes('~') ? raw.replace(/~1/g, '/').replace(/~0/g, '~') : raw;
      const list = this.kids.get(node);
      if (!list) return undefined;
      const next =
        typeof this.nameOf[list[0] ?? -1] === 'number' ? this.item(list, seg) : this.named(node, seg);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  private item(list: number[], seg: string): number | undefined {
    const i = Number(seg);
    return String(i) === seg ? list[i] : undefined;
  }

  private named(node: number, seg: string): number | undefined {
    let names = this.byName.get(node);
    if (!names) {
      names = new Map();
      for (const kid of this.kids.get(node) ?? []) names.set(String(this.nameOf[kid]), kid);
      this.byName.set(node, names);
    }
    return names.get(seg);
  }
}
