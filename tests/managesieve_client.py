"""A minimal ManageSieve client (RFC 5804) for tests/inbound and tests/webmail: just what a
client program does -- STARTTLS, AUTHENTICATE PLAIN, PUTSCRIPT, SETACTIVE,
LISTSCRIPTS, GETSCRIPT, DELETESCRIPT -- and every response kept whole
(OK/NO/BYE, its response code and its text), so a test can read the
server's words rather than a library's summary of them."""

import base64
import contextlib
import re
import socket
import ssl

_FINAL = re.compile(rb"^(OK|NO|BYE)(?: \(([^)]*)\))?(?: (.*))?$", re.DOTALL)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class Response:
    def __init__(self, status, code, text, lines):
        self.status, self.code, self.text, self.lines = status, code, text, lines

    @property
    def ok(self):
        return self.status == "OK"

    def __repr__(self):
        return f"<{self.status} ({self.code}) {self.text!r} lines={self.lines!r}>"


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ManageSieve:
    def __init__(self, host, port, source=None, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.file = self.sock.makefile("rb")
        self.greeting = self.read()
        self.capabilities = self._caps(self.greeting)

    @staticmethod
    def _caps(resp):
        caps = {}
        for line in resp.lines:
            m = re.match(rb'^"([^"]+)"(?: "([^"]*)")?$', line)
            if m:
                caps[m.group(1).decode().upper()] = (m.group(2) or b"").decode()
        return caps

    # --- wire -------------------------------------------------------------------
    def _line(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("ManageSieve server closed the connection")
        return line.rstrip(b"\r\n")

    def _string(self, line):
        """A trailing literal {N} on line: read its N bytes (and the CRLF)."""
        m = _LITERAL.search(line)
        if not m:
            return line
        data = self.file.read(int(m.group(1)))
        rest = self._line()
        return line[:m.start()] + data + rest

    def read(self):
        lines = []
        while True:
            line = self._string(self._line())
            m = _FINAL.match(line)
            if m:
                text = (m.group(3) or b"").strip()
                if text.startswith(b'"') and text.endswith(b'"'):
                    text = text[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
                return Response(m.group(1).decode(), (m.group(2) or b"").decode(),
                                text.decode(errors="replace"), lines)
            lines.append(line)

    def command(self, *parts):
        """parts: str (sent quoted) or bytes (sent as a literal)."""
        out = []
        for p in parts[1:]:
            if isinstance(p, bytes):
                out.append(f"{{{len(p)}+}}\r\n".encode() + p)
            else:
                out.append(_quote(p).encode())
        self.sock.sendall(b" ".join([parts[0].encode()] + out) + b"\r\n")
        return self.read()

    # --- commands ---------------------------------------------------------------
    def starttls(self, cafile, server_hostname):
        r = self.command("STARTTLS")
        if not r.ok:
            return r
        ctx = ssl.create_default_context(cafile=cafile)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.file = self.sock.makefile("rb")
        # RFC 5804 2.2: the server sends its capabilities again after TLS
        caps = self.read()
        self.capabilities = self._caps(caps)
        return caps

    def login(self, user, password, authzid=""):
        token = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        return self.command("AUTHENTICATE", "PLAIN", token)

    def put(self, name, script):
        return self.command("PUTSCRIPT", name, script.encode() if isinstance(script, str) else script)

    def check(self, script):
        return self.command("CHECKSCRIPT", script.encode())

    def activate(self, name):
        return self.command("SETACTIVE", name)

    def get(self, name):
        r = self.command("GETSCRIPT", name)
        return r, (b"\n".join(r.lines) if r.ok else None)

    def delete(self, name):
        return self.command("DELETESCRIPT", name)

    def scripts(self):
        """{name: active?} of the login's own scripts."""
        r = self.command("LISTSCRIPTS")
        assert r.ok, r
        out = {}
        for line in r.lines:
            m = re.match(rb'^"((?:[^"\\]|\\.)*)"( ACTIVE)?$', line)
            if m:
                out[m.group(1).decode()] = bool(m.group(2))
        return out

    def logout(self):
        with contextlib.suppress(OSError, ConnectionError):
            self.command("LOGOUT")
        self.sock.close()
