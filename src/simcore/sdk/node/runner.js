'use strict';
// The sandbox side of protocol v1 for the Node.js SDK: JSON lines on stdin/stdout, log on
// stderr. Run as `node runner.js` inside the sandbox; no npm packages, never simcore.
//
// All I/O is synchronous (fs.readSync / fs.writeSync on fds 0, 1, 2): the protocol is strict
// request/response, patches are synchronous, and it is several times faster than streams.
// Anything unexpected from the worker ends the process with status 3.

const fs = require('fs');
const path = require('path');
const simpay = require(path.join(__dirname, 'simpay.js'));

const PROTOCOL = 1;
const pause = new Int32Array(new SharedArrayBuffer(4));

class ProtocolError extends Error {}

// A patch that touches process.stdout can turn fd 1 non-blocking; wait and retry then.
function retryAgain(fn) {
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function writeAll(fd, text) {
  const data = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < data.length) {
    offset += retryAgain(() => fs.writeSync(fd, data, offset, data.length - offset));
  }
}

class StdioTransport {
  constructor() {
    this.chunk = Buffer.alloc(0);
    this.scratch = Buffer.alloc(1 << 16);
  }

  readLine() {
    for (;;) {
      const nl = this.chunk.indexOf(10);
      if (nl >= 0) {
        const line = this.chunk.toString('utf8', 0, nl);
        this.chunk = this.chunk.subarray(nl + 1);
        return line;
      }
      const n = retryAgain(() => fs.readSync(0, this.scratch, 0, this.scratch.length, null));
      if (n === 0) return null;
      const fresh = Buffer.from(this.scratch.subarray(0, n));
      this.chunk = this.chunk.length ? Buffer.concat([this.chunk, fresh]) : fresh;
    }
  }

  read() {
    const line = this.readLine();
    if (line === null) throw new ProtocolError('eof');
    const message = JSON.parse(line);
    if (!message || typeof message !== 'object' || Array.isArray(message)) {
      throw new ProtocolError('message is not an object');
    }
    return message;
  }

  write(message) {
    writeAll(1, JSON.stringify(message) + '\n');
  }

  expect(kind, opId) {
    const message = this.read();
    if (message.type !== kind || message.op_id !== opId) {
      throw new ProtocolError(`expected ${kind} for ${opId}, got ${message.type}`);
    }
    return message;
  }

  request(opId, attempt, method, reqPath, headers, body, timeoutMs) {
    this.write({
      type: 'req', op_id: opId, attempt, method, path: reqPath, headers, body,
      timeout_ms: timeoutMs,
    });
    return this.expect('resp', opId);
  }

  sleep(opId, ms) {
    this.write({ type: 'sleep', op_id: opId, ms });
    return this.expect('slept', opId);
  }

  event(name, opId, detail) {
    this.write({ type: 'event', name, op_id: opId, detail });
  }

  log(line) {
    writeAll(2, line + '\n');
  }
}

function serve(transport) {
  const hello = transport.read();
  if (hello.type !== 'hello' || hello.protocol !== PROTOCOL) {
    throw new ProtocolError('expected hello for protocol 1');
  }
  const config = hello.config;
  const patch = new simpay.Patch(hello.patch);
  transport.write({
    type: 'ready', protocol: PROTOCOL, language: 'node', sdk: `simpay-node/${simpay.SDK_VERSION}`,
    patch_error: patch.compileError,
  });
  let client = null;
  let lastClock = 0;
  for (;;) {
    const message = transport.read();
    const kind = message.type;
    if (kind === 'op' && client !== null) {
      lastClock = message.now_ms;
      transport.write(simpay.execute(client, message, patch));
    } else if (kind === 'phase') {
      client = new simpay.Client(config, transport);
      patch.startPhase(message.patch);
      transport.log(`phase ${message.name} started`);
    } else if (kind === 'bye') {
      if (message.rollback && client !== null) patch.rollback(client, null, lastClock);
      return;
    } else {
      throw new ProtocolError(`unexpected ${kind}`);
    }
  }
}

function main() {
  let status = 0;
  try {
    serve(new StdioTransport());
  } catch (err) {
    if (!(err instanceof ProtocolError && err.message === 'eof')) {
      writeAll(2, `simpay runner: protocol error: ${err && err.message}\n`);
      status = 3;
    }
  }
  // process.exit: timers or handles a patch left behind must not keep the runner alive.
  process.exit(status);
}

main();
