// The one door to ssh2. It is loaded on first use only, so commands that never
// open a connection (`moshctl validate`, `plan`) do not pay for loading it and
// keep working where its optional native parts fail to load.
import type * as Ssh2 from 'ssh2';

export type Ssh2Module = (typeof Ssh2)['default'];

let loaded: Promise<Ssh2Module> | undefined;

export function loadSsh2(): Promise<Ssh2Module> {
  // ssh2 is CommonJS and Node's ESM interop exposes only some of its exports
  // by name (not `utils`), so take the whole module.exports from `default`.
  loaded ??= import('ssh2').then((m): Ssh2Module => m.default);
  return loaded;
}
