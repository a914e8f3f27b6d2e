// TCP helpers for the scenarios that break connections on purpose (jitter,
// rolling restart): splicing an accepted client connection to a backend port.

import net from 'node:net';

/**
 * Pipe the accepted connection `c` both ways to `127.0.0.1:port`, tracking
 * both sockets in `conns` until either side closes or fails (then both go).
 */
export function splice(c, port, conns) {
  const up = net.connect(port, '127.0.0.1');
  const end = () => {
    conns.delete(c);
    conns.delete(up);
    c.destroy();
    up.destroy();
  };
  conns.add(c);
  conns.add(up);
  for (const x of [c, up]) {
    x.on('error', end);
    x.on('close', end);
  }
  c.pipe(up);
  up.pipe(c);
}
