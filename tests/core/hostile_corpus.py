"""Hostile patch code, per SDK language, shared by the sandbox tests of every backend.

``tests/core/test_hostile.py`` plays the first part against the process sandbox; the docker
tests (``tests/images/test_hostile_sandboxes.py``) play all of it against both backends.

Every patch below runs on the first failed operation of the patched phase (the scenario fails
them all). The probes log what they saw with ``ctx.log`` (the run log) and then raise
``done``, so the patch is disabled after one invocation and the run ends ``failed`` with the
reason ``patch raised: ...: done``: a deterministic end that shows the probe ran once and the
run survived it. Upper-case placeholders (``PORT``, ``HOSTS``, ``WORKER_PID``...) are filled
in by the tests with ``fill``.
"""

from __future__ import annotations

import json

from simcore.model import Scenario

SCENARIO = Scenario.parse(
    {"error": "timeout", "error_frequency": 1.0, "latency_ms": 100, "total_requests": 4,
     "success_threshold": 0.9}
)  # fmt: skip
SHORT_MS = 1_500

FORGED = '{"type":"done","op_id":"op-000001","ok":true,"payment_id":"pay_forged"}'
REPORT = '{"type":"report","status":"success","metrics":{"success_rate":1.0}}'
CODE = {
    "python": {
        "forged_done": f"print({FORGED!r})\nctx.retry()\n",
        "forged_report": f"import os\nos.write(1, {REPORT!r}.encode() + b'\\n')\n",
        "garbage": (
            "import sys\nsys.stdout.write('\\x1b[2J\\x00' * 5000 + '\\n')\nsys.stdout.flush()\n"
        ),
        "blocks": "import time\ntime.sleep(3600)\n",
        "spins": "while True:\n    pass\n",
        "raises": "ctx.client.timeout_ms = 1\nraise RuntimeError('boom')\n",
    },
    "node": {
        "forged_done": f"console.log({FORGED!r});\nctx.retry();\n",
        "forged_report": f"process.stdout.write({REPORT!r} + '\\n');\n",
        "garbage": "process.stdout.write('\\x1b[2J\\x00'.repeat(5000) + '\\n');\n",
        "blocks": "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n",
        "spins": "for (;;) {}\n",
        "raises": "ctx.client.timeout_ms = 1;\nthrow new Error('boom');\n",
    },
}
# Connect to a port the test listens on, on the host's loopback; print what happened.
CONNECT = {
    "python": (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', PORT), timeout=2).close()\n"
        "    ctx.log('net: CONNECTED')\n"
        "except OSError as exc:\n"
        "    ctx.log('net: refused', exc)\n"
    ),
    "node": (
        "const cp = process.mainModule.require('child_process');\n"
        "const probe = \"const s = require('net').connect(PORT, '127.0.0.1');"
        " s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });"
        " s.on('error', (e) => { console.log('refused ' + e.code); process.exit(0); });\";\n"
        "const out = cp.spawnSync(process.execPath, ['-e', probe],"
        " {encoding: 'utf8', timeout: 5000});\n"
        "ctx.log('net: ' + String(out.stdout).trim() + String(out.error || ''));\n"
    ),
}

DONE_REASONS = ("patch raised: RuntimeError: done", "patch raised: Error: done")
# The command line of the processes the fork bomb leaves behind: unique, so a test can look
# for survivors on the host.
SLEEPER = ("/bin/sleep", "61.5")


def _node_child(probe: str, args: str = "null") -> str:
    """Node patches are synchronous: a probe that needs the event loop (sockets, DNS) runs in
    a child node process (``args``, a JS expression, reaches it as ``ARGS``) and the patch
    logs what it printed."""
    program = f"const ARGS = JSON.parse(process.argv[1]); {probe}"
    return (
        "const cp = process.mainModule.require('child_process');\n"
        f"const out = cp.spawnSync(process.execPath, ['-e', {json.dumps(program)}, "
        f"JSON.stringify({args})], {{encoding: 'utf8', timeout: 8000}});\n"
        "for (const line of String(out.stdout).trim().split('\\n')) ctx.log(line);\n"
        "if (out.error) ctx.log('probe error ' + String(out.error));\n"
        "throw new Error('done');\n"
    )


PROBES: dict[str, dict[str, str]] = {
    # Open TCP connections to a listener of the test, at each address in HOSTS.
    "network": {
        "python": (
            "import socket\n"
            "for host in HOSTS:\n"
            "    try:\n"
            "        socket.create_connection((host, PORT), timeout=2).close()\n"
            "        ctx.log('net:', host, 'CONNECTED')\n"
            "    except OSError as exc:\n"
            "        ctx.log('net:', host, 'blocked', type(exc).__name__)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": _node_child(
            "const net = require('net'); let left = ARGS.hosts.length;"
            " for (const host of ARGS.hosts) {"
            "  const s = net.connect({host, port: ARGS.port, timeout: 2000});"
            "  const end = (what) => { console.log('net: ' + host + ' ' + what); s.destroy();"
            "   if (--left === 0) process.exit(0); };"
            "  s.on('connect', () => end('CONNECTED'));"
            "  s.on('timeout', () => end('blocked timeout'));"
            "  s.on('error', (e) => end('blocked ' + e.code)); }",
            "{hosts: HOSTS, port: PORT}",
        ),
    },
    # Resolve a public name.
    "dns": {
        "python": (
            "import socket\n"
            "try:\n"
            "    ctx.log('dns: RESOLVED', socket.getaddrinfo('example.com', 443)[0][4])\n"
            "except OSError as exc:\n"
            "    ctx.log('dns: failed', type(exc).__name__)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": _node_child(
            "require('dns').lookup('example.com', (e, a) =>"
            " console.log(e ? 'dns: failed ' + e.code : 'dns: RESOLVED ' + a));"
        ),
    },
    # Start processes until the system says no; each one sleeps (SLEEPER) to hold its slot.
    "fork_bomb": {
        "python": (
            "import os\n"
            "n = 0\n"
            "try:\n"
            "    while n < 5000:\n"
            "        if os.fork() == 0:\n"
            f"            os.execv({SLEEPER[0]!r}, [{SLEEPER[0]!r}, {SLEEPER[1]!r}])\n"
            "        n += 1\n"
            "except OSError as exc:\n"
            "    ctx.log('fork: stopped after', n, type(exc).__name__)\n"
            "else:\n"
            "    ctx.log('fork: UNLIMITED', n)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": (
            "const cp = process.mainModule.require('child_process');\n"
            "let n = 0;\n"
            "for (; n < 5000; n++) {\n"
            f"  const child = cp.spawn({SLEEPER[0]!r}, [{SLEEPER[1]!r}], {{stdio: 'ignore'}});\n"
            "  child.on('error', () => {});\n"
            "  if (child.pid === undefined) break;\n"
            "}\n"
            "ctx.log(n < 5000 ? 'fork: stopped after ' + n : 'fork: UNLIMITED ' + n);\n"
            "throw new Error('done');\n"
        ),
    },
    # Allocate (and touch) memory until something gives.
    "memory": {
        "python": "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n",
        "node": "const chunks = [];\nfor (;;) chunks.push(Buffer.alloc(16 << 20, 1));\n",
    },
    "spin": {"python": CODE["python"]["spins"], "node": CODE["node"]["spins"]},
    # A real sleep of an hour (node has no sleep: a blocking wait, then a sleeping child).
    "sleep": {
        "python": CODE["python"]["blocks"],
        "node": (
            "process.mainModule.require('child_process').execFileSync('/bin/sleep', ['3600']);\n"
        ),
    },
    # 1 GiB on stderr, in 1 MiB writes of 1 KiB lines.
    "stderr_flood": {
        "python": (
            "import os\n"
            "block = (b'x' * 1023 + b'\\n') * 1024\n"
            "for _ in range(1024):\n"
            "    view = memoryview(block)\n"
            "    while view:\n"
            "        view = view[os.write(2, view):]\n"
            "ctx.log('flood: done')\n"
            "raise RuntimeError('done')\n"
        ),
        "node": (
            "const fs = process.mainModule.require('fs');\n"
            "const block = Buffer.from(('x'.repeat(1023) + '\\n').repeat(1024));\n"
            "for (let i = 0; i < 1024; i++) {\n"
            "  let off = 0;\n"
            "  while (off < block.length) {\n"
            "    try { off += fs.writeSync(2, block, off, block.length - off); }\n"
            "    catch (e) { if (e.code !== 'EAGAIN') throw e; }\n"
            "  }\n"
            "}\n"
            "ctx.log('flood: done');\n"
            "throw new Error('done');\n"
        ),
    },
    # Create a file in each of TARGETS, then in the sandbox's own temporary folder.
    "write_outside": {
        "python": (
            "import os, tempfile\n"
            "for path in TARGETS + [os.path.join(tempfile.gettempdir(), 'mine')]:\n"
            "    try:\n"
            "        with open(path, 'w') as f:\n"
            "            f.write('intruder')\n"
            "        ctx.log('write:', path, 'WRITTEN')\n"
            "    except OSError as exc:\n"
            "        ctx.log('write:', path, 'refused', type(exc).__name__)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": (
            "const fs = process.mainModule.require('fs');\n"
            "const path = process.mainModule.require('path');\n"
            "const os = process.mainModule.require('os');\n"
            "for (const target of TARGETS.concat([path.join(os.tmpdir(), 'mine')])) {\n"
            "  try { fs.writeFileSync(target, 'intruder'); ctx.log('write: ' + target + "
            "' WRITTEN'); }\n"
            "  catch (e) { ctx.log('write: ' + target + ' refused ' + e.code); }\n"
            "}\n"
            "throw new Error('done');\n"
        ),
    },
    # Print the whole environment, and every environ file of /proc it can open.
    "env_secrets": {
        "python": (
            "import json, os\n"
            "ctx.log('env: ' + json.dumps(dict(os.environ)))\n"
            "for pid in ('self', '1', str(os.getppid()), str(WORKER_PID)):\n"
            "    try:\n"
            "        with open(f'/proc/{pid}/environ', 'rb') as f:\n"
            "            ctx.log('environ', pid, f.read())\n"
            "    except OSError as exc:\n"
            "        ctx.log('environ', pid, 'refused', type(exc).__name__)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": (
            "const fs = process.mainModule.require('fs');\n"
            "ctx.log('env: ' + JSON.stringify(process.env));\n"
            "for (const pid of ['self', '1', String(process.ppid), String(WORKER_PID)]) {\n"
            "  try { ctx.log('environ ' + pid + ' ' + "
            "JSON.stringify(fs.readFileSync('/proc/' + pid + '/environ', 'latin1'))); }\n"
            "  catch (e) { ctx.log('environ ' + pid + ' refused ' + e.code); }\n"
            "}\n"
            "throw new Error('done');\n"
        ),
    },
    # Read files of the host: READS (files) and LISTS (folders).
    "host_files": {
        "python": (
            "import os\n"
            "for path in READS:\n"
            "    try:\n"
            "        with open(path, 'rb') as f:\n"
            "            ctx.log('read:', path, 'READ', f.read(200))\n"
            "    except OSError as exc:\n"
            "        ctx.log('read:', path, 'refused', type(exc).__name__)\n"
            "for path in LISTS:\n"
            "    try:\n"
            "        ctx.log('list:', path, 'LISTED', sorted(os.listdir(path))[:20])\n"
            "    except OSError as exc:\n"
            "        ctx.log('list:', path, 'refused', type(exc).__name__)\n"
            "raise RuntimeError('done')\n"
        ),
        "node": (
            "const fs = process.mainModule.require('fs');\n"
            "for (const p of READS) {\n"
            "  try { ctx.log('read: ' + p + ' READ ' + "
            "fs.readFileSync(p, 'latin1').slice(0, 200)); }\n"
            "  catch (e) { ctx.log('read: ' + p + ' refused ' + e.code); }\n"
            "}\n"
            "for (const p of LISTS) {\n"
            "  try { ctx.log('list: ' + p + ' LISTED ' + "
            "fs.readdirSync(p).sort().slice(0, 20)); }\n"
            "  catch (e) { ctx.log('list: ' + p + ' refused ' + e.code); }\n"
            "}\n"
            "throw new Error('done');\n"
        ),
    },
    # Protocol forgeries on stdout (the first part's three, under one name each).
    "forged_done": {"python": CODE["python"]["forged_done"], "node": CODE["node"]["forged_done"]},
    "forged_report": {
        "python": CODE["python"]["forged_report"],
        "node": CODE["node"]["forged_report"],
    },
    "garbage": {"python": CODE["python"]["garbage"], "node": CODE["node"]["garbage"]},
}


def fill(code: str, **values: object) -> str:
    """``code`` with each upper-case placeholder replaced by the JSON of its value (valid
    Python and JavaScript alike for the strings, numbers and lists used here)."""
    for name, value in values.items():
        code = code.replace(name, json.dumps(value))
    return code
