'use strict';
// The sandbox side of protocol v2 for the Node.js SDK: JSON lines on stdin/stdout, log on
// stderr. Run as `node runner.js` inside the sandbox; no npm packages, never simcore.
//
// All I/O is synchronous (fs.readSync / fs.writeSync on fds 0, 1, 2): the protocol is strict
// request/response, patches are synchronous, and it is several times faster than streams.
// Messages to the worker are collected and written in one go when the runner is about to
// wait for the worker (and before it exits): a `done` and the first `req` of the next op then
// cost one write and one wake-up of the worker instead of two. Protocol 1 is still spoken: it
// is protocol 2 without `next`, which the runner then simply never receives.
// Anything unexpected from the worker ends the process with status 3.

const fs = require('fs');
const path = require('path');
const simpay = require(path.join(__dirname, 'simpay.js'));

const PROTOCOLS = [1, 2];
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
    // Unread input is buf[start, end): lines are decoded straight out of it, without a copy
    // per read; it moves to the front (and grows) only when a line does not fit.
    this.buf = Buffer.allocUnsafe(1 << 16);
    this.start = 0;
    this.end = 0;
    this.out = '';
    // The `next` op of the worker's last `resp` or `slept`: the op to run as soon as the one
    // in flight is done, without waiting for an `op` message.
    this.upcoming = null;
  }

  readLine() {
    let from = this.start;
    for (;;) {
      const nl = from < this.end ? this.buf.subarray(0, this.end).indexOf(10, from) : -1;
      if (nl >= 0) {
        const line = this.buf.toString('utf8', this.start, nl);
        this.start = nl + 1;
        return line;
      }
      if (this.start === this.end) this.start = this.end = 0;
      from = this.end;
      if (this.end === this.buf.length) {
        const pending = this.end - this.start;
        const target =
          pending * 2 > this.buf.length ? Buffer.allocUnsafe(this.buf.length * 2) : this.buf;
        this.buf.copy(target, 0, this.start, this.end);
        this.buf = target;
        this.start = 0;
        this.end = pending;
        from = pending;
      }
      const room = this.buf.length - this.end;
      const n = retryAgain(() => fs.readSync(0, this.buf, this.end, room, null));
      if (n === 0) return null;
      this.end += n;
    }
  }

  read() {
    this.flush();
    const line = this.readLine();
    if (line === null) throw new ProtocolError('eof');
    const message = JSON.parse(line);
    if (!message || typeof message !== 'object' || Array.isArray(message)) {
      throw new ProtocolError('message is not an object');
    }
    return message;
  }

  write(message) {
    this.out += JSON.stringify(message) + '\n';
  }

  flush() {
    if (this.out.length === 0) return;
    const text = this.out;
    this.out = '';
    writeAll(1, text);
  }

  expect(kind, opId) {
    const message = this.read();
    if (message.type !== kind || message.op_id !== opId) {
      throw new ProtocolError(`expected ${kind} for ${opId}, got ${message.type}`);
    }
    const upcoming = message.next;
    if (upcoming !== undefined && upcoming !== null &&
        (typeof upcoming !== 'object' || Array.isArray(upcoming) || upcoming.type !== 'op')) {
      throw new ProtocolError(`${kind}.next is not an op`);
    }
    this.upcoming = upcoming === undefined ? null : upcoming;
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
  if (hello.type !== 'hello' || !PROTOCOLS.includes(hello.protocol)) {
    throw new ProtocolError('expected hello for protocol 1 or 2');
  }
  const config = hello.config;
  const patch = new simpay.Patch(hello.patch);
  transport.write({
    type: 'ready', protocol: hello.protocol, language: 'node',
    sdk: `simpay-node/${simpay.SDK_VERSION}`, patch_error: patch.compileError,
  });
  let client = null;
  let lastClock = 0;
  for (;;) {
    const message = transport.read();
    const kind = message.type;
    if (kind === 'op' && client !== null) {
      let op = message;
      while (op !== null) {
        lastClock = op.now_ms;
        transport.upcoming = null;
        transport.write(simpay.execute(client, op, patch));
        op = transport.upcoming; // protocol 2: the next op came with the last answer
      }
    } else if (kind === 'phase') {
      client = new simpay.Client(config, transport);
      patch.startPhase(message.patch);
      transport.log(`phase ${message.name} started`);
    } else if (kind === 'bye') {
      if (message.rollback && client !== null) patch.rollback(client, null, lastClock);
      transport.flush();
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
