'use strict';
// simpay: the reference Node.js SDK of the simulated payments API, with self-healing patches.
//
// No npm packages, and never anything from simcore: it runs inside the sandbox, where the only
// way out is a transport (stdin/stdout JSON lines, see runner.js). It mirrors the Python SDK
// (../python/simpay.py) line for line: both must send the same requests in the same order for
// every patch, so that a patch gets the same verdict in every language.
//
// Patch contract (docs/patches.md): patch_code is the body of a function of one argument,
// `ctx`; it runs when an operation fails with an error whose code equals the patch's
// error_signature (at most once per operation), synchronously: ctx.retry() and ctx.sleep()
// block on the (virtual) network. rollback_code is the body of a function of `ctx` (client,
// now, log) that restores the client; it runs at once if the patch throws (the patch is then
// disabled for the rest of the phase) and when the worker asks at the end of a failed run.

const crypto = require('crypto');

const SDK_VERSION = '1.0.0';
const MAX_SLEEP_MS = 3600000;
const MAX_TIMEOUT_MS = 600000;

class SdkError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
class RetryBudgetExceeded extends SdkError {}
class DeadlineExceeded extends SdkError {}

function sign(secret, timestamp, method, path, body) {
  return crypto
    .createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(Buffer.from(timestamp + method + path + body, 'utf8'))
    .digest('hex');
}

// `sign` for one secret, its key converted once: every request is signed. (Copying prepared
// inner and outer hashes, as the Python SDK does, is no faster here: node's cost is per
// crypto object, not in the key set-up.)
class Signer {
  constructor(secret) {
    this.key = Buffer.from(secret, 'utf8');
  }

  sign(timestamp, method, path, body) {
    return crypto
      .createHmac('sha256', this.key)
      .update(timestamp + method + path + body, 'utf8')
      .digest('hex');
  }
}

function describe(err) {
  if (!(err instanceof Error)) return `Error: ${String(err)}`.slice(0, 400);
  return (err.message ? `${err.name}: ${err.message}` : err.name).slice(0, 400);
}

function isInt(value) {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

class Response {
  constructor(message) {
    this.timed_out = Boolean(message.timed_out);
    this.status = this.timed_out ? null : message.status;
    this.headers = message.headers || {};
    const body = message.body;
    this.body = body && typeof body === 'object' && !Array.isArray(body) ? body : {};
    this.elapsed_ms = message.elapsed_ms || 0;
  }

  get ok() {
    return !this.timed_out && this.status !== null && this.status >= 200 && this.status < 300;
  }

  get error_code() {
    if (this.ok) return null;
    if (this.timed_out) return 'timeout';
    const error = this.body.error;
    if (error && typeof error === 'object' && typeof error.code === 'string') return error.code;
    return `http_${this.status}`;
  }
}

function errorView(response) {
  if (response.ok) return null;
  const error = response.body.error;
  const message = error && typeof error === 'object' ? error.message : null;
  return {
    code: response.error_code,
    status: response.status,
    message: typeof message === 'string' ? message : '',
    body: response.body,
    headers: response.headers,
    timed_out: response.timed_out,
  };
}

class Client {
  constructor(config, transport) {
    this.apiKeyId = String(config.api_key_id);
    this.secret = String(config.secret);
    this.signer = new Signer(this.secret);
    this.maxAttempts = Number(config.max_attempts);
    this.transport = transport;
    this.state = {
      timeout_ms: Number(config.timeout_ms),
      clock_offset_ms: Number(config.clock_offset_ms || 0),
    };
  }
}

class Operation {
  constructor(client, message) {
    this.client = client;
    this.opId = String(message.op_id);
    this.clock = message.now_ms;
    this.deadlineAt = this.clock + message.deadline_ms;
    this.attempts = 0;
    this.request = {
      method: 'POST',
      path: '/v1/payments',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'idem_' + this.opId },
      body: Object.assign({}, message.payment),
    };
  }

  send() {
    const client = this.client;
    const request = this.request;
    if (this.attempts >= client.maxAttempts) {
      throw new RetryBudgetExceeded(`attempt budget of ${client.maxAttempts} exhausted`);
    }
    if (this.clock >= this.deadlineAt) throw new DeadlineExceeded('the operation deadline has passed');
    const timeout = client.state.timeout_ms;
    if (!isInt(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
      throw new SdkError(`client.timeout_ms must be an integer in [1, ${MAX_TIMEOUT_MS}]`);
    }
    const offset = client.state.clock_offset_ms;
    if (!isInt(offset)) throw new SdkError('client.clock_offset_ms must be an integer');
    this.attempts += 1;
    const method = String(request.method);
    const path = String(request.path);
    const body = JSON.stringify(request.body);
    const stamp = String(this.clock + offset);
    const headers = {};
    for (const [k, v] of Object.entries(request.headers)) headers[String(k)] = String(v);
    headers['X-Api-Key'] = client.apiKeyId;
    headers['X-Timestamp'] = stamp;
    headers['X-Signature'] = client.signer.sign(stamp, method, path, body);
    const message = client.transport.request(
      this.opId, this.attempts, method, path, headers, body, timeout);
    this.clock = message.now_ms;
    return new Response(message);
  }

  sleep(ms) {
    if (!isInt(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
      throw new SdkError(`sleep takes an integer number of ms in [0, ${MAX_SLEEP_MS}]`);
    }
    const message = this.client.transport.sleep(this.opId, ms);
    this.clock = message.now_ms;
  }
}

class Context {
  constructor(operation, response) {
    this._operation = operation;
    this.client = operation.client.state;
    this.request = operation.request;
    this.response = response;
    this.error = errorView(response);
    this.op_id = operation.opId;
    this.max_attempts = operation.client.maxAttempts;
  }

  get attempt() {
    return this._operation.attempts;
  }

  // Send ctx.request again, re-signed with the current clock and offset.
  retry() {
    this.response = this._operation.send();
    this.error = errorView(this.response);
    return this.response;
  }

  // Wait `ms` milliseconds of virtual time.
  sleep(ms) {
    this._operation.sleep(ms);
  }

  // The client host's clock (ms), without the client's clock offset.
  now() {
    return this._operation.clock;
  }

  log(...parts) {
    this._operation.client.transport.log(`[patch ${this.op_id}] ${parts.map(String).join(' ')}`);
  }
}

class RollbackContext {
  constructor(client, clock) {
    this._client = client;
    this._clock = clock;
    this.client = client.state;
  }

  now() {
    return this._clock;
  }

  log(...parts) {
    this._client.transport.log('[rollback] ' + parts.map(String).join(' '));
  }
}

function compileBody(code) {
  // eslint-disable-next-line no-new-func -- patches are code by definition; the sandbox contains them
  return new Function('ctx', '"use strict";\n' + (code && code.trim() ? code : ''));
}

class Patch {
  constructor(spec) {
    this.signature = null;
    this.fn = null;
    this.rollbackFn = null;
    this.compileError = null;
    this.active = false;
    if (spec === null || spec === undefined) return;
    this.signature = String(spec.error_signature);
    for (const [field, name] of [['code', 'patch'], ['rollback', 'rollback']]) {
      let fn;
      try {
        fn = compileBody(String(spec[field] || ''));
      } catch (err) {
        this.fn = null;
        this.compileError = `${describe(err)}${name === 'rollback' ? ' (rollback)' : ''}`;
        return;
      }
      if (field === 'code') this.fn = fn;
      else this.rollbackFn = fn;
    }
  }

  startPhase(enabled) {
    this.active = Boolean(enabled) && this.fn !== null;
  }

  // Apply the patch to a failed operation; returns the operation's last response.
  run(operation, response) {
    const transport = operation.client.transport;
    transport.event('patch_applied', operation.opId, this.signature);
    transport.log(`patch_applied op=${operation.opId} error=${this.signature}`);
    const ctx = new Context(operation, response);
    try {
      const result = this.fn.call(undefined, ctx);
      if (result && typeof result.then === 'function') {
        throw new SdkError('patches run synchronously: do not return a promise');
      }
    } catch (err) {
      transport.event('patch_error', operation.opId, describe(err));
      transport.log(`patch_error op=${operation.opId} ${describe(err)}`);
      this.rollback(operation.client, operation.opId, operation.clock);
      this.active = false;
    }
    return ctx.response;
  }

  rollback(client, opId, clock) {
    const transport = client.transport;
    try {
      if (this.rollbackFn !== null) this.rollbackFn.call(undefined, new RollbackContext(client, clock));
    } catch (err) {
      transport.event('rollback_error', opId, describe(err));
      transport.log(`rollback_error ${describe(err)}`);
      return;
    }
    transport.event('rollback', opId, 'client restored');
    transport.log('rollback: patch disabled, client restored');
  }
}

// Run one operation to completion and return its `done` message.
function execute(client, message, patch) {
  const operation = new Operation(client, message);
  let response;
  try {
    response = operation.send();
  } catch (err) {
    if (!(err instanceof SdkError)) throw err;
    // A patch left the client unusable (say, timeout_ms = "10s"): the op fails, the runner
    // goes on, and the gateway scores the harm.
    client.transport.log(`sdk_error op=${operation.opId} ${describe(err)}`);
    return { type: 'done', op_id: operation.opId, ok: false, payment_id: null, error: 'sdk_error' };
  }
  if (!response.ok && patch.active && response.error_code === patch.signature) {
    response = patch.run(operation, response);
  }
  const paymentId = response.ok ? response.body.id : null;
  return {
    type: 'done',
    op_id: operation.opId,
    ok: response.ok,
    payment_id: typeof paymentId === 'string' ? paymentId : null,
    error: response.error_code,
  };
}

module.exports = {
  SDK_VERSION,
  Client,
  Context,
  DeadlineExceeded,
  Operation,
  Patch,
  Response,
  RetryBudgetExceeded,
  SdkError,
  Signer,
  execute,
  sign,
};
