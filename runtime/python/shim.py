"""vcd-faas runtime shim for Python: serves the user's handler on a unix socket.

The gateway POSTs {event, context} to /invoke and gets {statusCode, headers, body,
isBase64Encoded, logs, error} back. The handler is imported before the socket opens, so the
container is ready to serve as soon as the socket exists. Each call runs in its own thread, so
a container serves as many calls at once as the function's concurrency lets the gateway send.
Connections stay open (HTTP/1.1 keep-alive): the gateway reuses them for the next calls.
"""
import base64
import contextlib
import importlib.util
import io
import ipaddress
import itertools
import json
import os
import socket
import socketserver
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler

SOCKET = os.environ.get("FAAS_SOCKET", "/run/faas/sock")
MAX_LOG = 64 * 1024

# The function's own modules (`from lib import util`) come first, as a script's folder does;
# its installed packages after the standard library, as site-packages do.
sys.path.insert(0, "/app")
sys.path.append("/opt/faas/deps")

load_error = None
handle = None
loaded = threading.Lock()


def load_handler():
    global handle, load_error
    try:
        spec = importlib.util.spec_from_file_location("handler", "/app/handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handle = getattr(module, "handle", None) or getattr(module, "handler", None)
        if not callable(handle):
            raise TypeError("handler.py must define: def handle(event, context): return result")
    except Exception:  # serve the load error on every call rather than dying
        load_error = traceback.format_exc()


# A function with configuration gets it with each call (secrets never are container
# environment); it is loaded at its first call, once that is set, so module-level reads of
# os.environ see it. Others are loaded now, before the socket opens.
ENV_BY_CALL = os.environ.get("FAAS_ENV_BY_CALL") == "1"
applied_env = set()
if not ENV_BY_CALL:
    load_handler()


def apply_env(env):
    for name in applied_env - env.keys():
        os.environ.pop(name, None)
    os.environ.update(env)
    applied_env.clear()
    applied_env.update(env.keys())


# The log buffer of the call running in this thread (None outside a call).
current = threading.local()

# Outbound network. The container has none: every TCP connection (socket, http.client,
# urllib, requests) is asked of the platform's gate in the socket folder, which checks the
# tenant's allowlist, resolves the name itself and connects; the answer is a one-use unix
# socket that becomes the connection's file descriptor (TLS stays end to end), or the reason
# it was refused, raised here. This only routes; what is allowed is decided outside.
EGRESS = os.path.join(os.path.dirname(SOCKET), "egress")
_plain_connect = socket.socket.connect
_plain_setsockopt = socket.socket.setsockopt
_plain_getaddrinfo = socket.getaddrinfo
# Names are resolved by the platform: a name resolves here to a stand-in address (from
# 198.18.0.0/15, a range for benchmarks that nothing real uses) that the connect turns back
# into the name.
_stand_ins = {}
_names = {}
_next_stand_in = itertools.count(1)
_stand_in_lock = threading.Lock()


def _is_address(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _stand_in(name):
    with _stand_in_lock:
        if name not in _stand_ins:
            n = next(_next_stand_in) % (2 ** 17)
            address = f"198.{18 + n // 65536}.{n // 256 % 256}.{n % 256}"
            _stand_ins[name] = address
            _names[address] = name
        return _stand_ins[name]


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or _is_address(host) or family == socket.AF_UNIX:
        return _plain_getaddrinfo(host, port, family, type, proto, flags)
    if isinstance(port, str):
        port = int(port) if port.isdigit() else socket.getservbyname(port)
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (_stand_in(host.lower()), port or 0))]


def _ask_gate(host, port):
    gate = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _plain_connect(gate, EGRESS)
        request_id = getattr(current, "request_id", None) or "-"
        gate.sendall(f"CONNECT {host} {port} {request_id}\n".encode())
        answer = b""
        while not answer.endswith(b"\n"):
            part = gate.recv(1024)
            if not part:
                break
            answer += part
    except OSError as e:
        raise ConnectionRefusedError(f"egress to {host}:{port}: the platform's gate cannot be reached ({e})") from None
    finally:
        gate.close()
    line = answer.decode(errors="replace").strip()
    if line.startswith("OK "):
        return os.path.join(os.path.dirname(EGRESS), os.path.basename(line[3:]))
    raise ConnectionRefusedError(line[4:] if line.startswith("ERR ") else f"egress to {host}:{port} refused")


def _connect(self, address):
    if self.family not in (socket.AF_INET, socket.AF_INET6) or self.type != socket.SOCK_STREAM:
        return _plain_connect(self, address)
    host, port = address[0], address[1]
    ticket = _ask_gate(_names.get(host, host), port)
    tunnel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        tunnel.settimeout(self.gettimeout())
        _plain_connect(tunnel, ticket)
        # The connection takes this socket's place: callers keep the object they made.
        os.dup2(tunnel.fileno(), self.fileno())
    finally:
        tunnel.close()


def _connect_ex(self, address):
    try:
        _connect(self, address)
        return 0
    except OSError as e:
        return e.errno or 111


def _setsockopt(self, level, option, *value):
    try:
        return _plain_setsockopt(self, level, option, *value)
    except OSError:
        # A connection through the gate is a unix socket: TCP options do not apply to it.
        if level == socket.IPPROTO_TCP and self.family in (socket.AF_INET, socket.AF_INET6):
            return None
        raise


socket.getaddrinfo = _getaddrinfo
socket.gethostbyname = lambda host: host if _is_address(host) else _stand_in(host.lower())
socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.socket.setsockopt = _setsockopt


class Tee(io.TextIOBase):
    """Writes to the container's stream and keeps a bounded copy in the running call's log.
    Installed once for the process: redirecting sys.stdout per call would mix concurrent calls."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        buffer = getattr(current, "buffer", None)
        if buffer is not None:
            room = max(0, MAX_LOG - buffer.tell())
            buffer.write(text[:room])
            current.dropped += max(0, len(text) - room)
        self.stream.write(text)
        return len(text)

    def flush(self):
        self.stream.flush()


sys.stdout, sys.stderr = Tee(sys.__stdout__), Tee(sys.__stderr__)


def to_reply(result):
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body")
        if body is None:
            body = ""
        elif isinstance(body, (bytes, bytearray)):
            return dict(statusCode=int(result["statusCode"]), headers=headers,
                        body=base64.b64encode(body).decode(), isBase64Encoded=True)
        elif not isinstance(body, str):
            body = json.dumps(body)
            headers.setdefault("content-type", "application/json")
        return dict(statusCode=int(result["statusCode"]), headers=headers, body=body, isBase64Encoded=False)
    if isinstance(result, (bytes, bytearray)):
        return dict(statusCode=200, headers={"content-type": "application/octet-stream"},
                    body=base64.b64encode(result).decode(), isBase64Encoded=True)
    if isinstance(result, str):
        return dict(statusCode=200, headers={"content-type": "text/plain; charset=utf-8"}, body=result, isBase64Encoded=False)
    if result is None:
        return dict(statusCode=204, headers={}, body="", isBase64Encoded=False)
    return dict(statusCode=200, headers={"content-type": "application/json"}, body=json.dumps(result), isBase64Encoded=False)


def log_of(buffer):
    """The call's log, saying how much of it was not kept."""
    if not current.dropped:
        return buffer.getvalue()
    return buffer.getvalue() + (f"\n[vcd-faas: {current.dropped} more characters of log not kept; "
                                f"the first {MAX_LOG} are above]\n")


def invoke(envelope):
    event, context = envelope["event"], envelope["context"]
    if ENV_BY_CALL:
        with loaded:
            apply_env(envelope.get("env") or {})
            if handle is None and load_error is None:
                load_handler()
    if event.pop("isBase64Encoded", False):
        event["body"] = base64.b64decode(event["body"])
    buffer = current.buffer = io.StringIO()
    current.dropped = 0
    current.request_id = context.get("requestId")
    try:
        if load_error:
            raise RuntimeError(load_error)
        reply = to_reply(handle(event, context))
        reply.update(logs=log_of(buffer), error=None)
        return reply
    except BaseException as e:  # SystemExit too: one call must not end the runtime
        traceback.print_exc()
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return dict(statusCode=500, headers={}, body="", isBase64Encoded=False,
                    logs=log_of(buffer), error=f"{type(e).__name__}: {first}")
    finally:
        current.buffer = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered, so the answer's head and body leave in one write when the request is done
    # (unbuffered, they were two, and the gateway woke up twice per call).
    wbufsize = 64 * 1024

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            reply = invoke(json.loads(self.rfile.read(length)))
        except Exception as e:
            reply = dict(statusCode=500, headers={}, body="", isBase64Encoded=False, logs="", error=f"runtime: {e}")
        out = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass

    def address_string(self):
        return "gateway"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    request_queue_size = 128
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("gateway", 0)


if __name__ == "__main__":
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET)
    with Server(SOCKET, Handler) as server:
        server.serve_forever()
