// A free TCP port on 127.0.0.1, for a server whose address must be known
// before it listens: the admission webhook listens only once its certificate
// is trusted, and the configurations that call it must name its URL first.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  const probe = createServer();
  return new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
