# An agent in Python, standard library only, with no code that knows about
# certificates, keys or policy: the identity proxy beside it (injected by the
# webhook for an AgentIdentity with spec.proxy) does mTLS and policy both ways.
# `make demo` runs it as the researcher agent.
#
#   HOST, PORT   where to serve plain HTTP (the webhook sets HOST=127.0.0.1; PORT is spec.proxy.appPort)
#   HTTP_PROXY   set by the webhook; urllib sends every http:// call through it
#   AGENT_NAME   how it introduces itself (default "agent")
#
# Inbound: GET / answers who called, as the proxy verified it (x-agent-identity-peer).
# Outbound: each line on stdin is a URL to call, like a tool call an LLM chose;
# each answer is one JSON line on stdout: {"event": "response", "url", "status", "body"}.
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get('AGENT_NAME', 'agent')


def say(**fields):
    print(json.dumps(fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        # Only the proxy reaches this port, and it replaces whatever the client sent in this header.
        caller = self.headers.get('x-agent-identity-peer', 'unknown')
        body = f'hello {caller}, from {NAME} (Python)\n'.encode()
        self.send_response(200)
        self.send_header('content-type', 'text/plain')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def call(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            say(event='response', url=url, status=r.status, body=r.read().decode())
    except urllib.error.HTTPError as e:
        say(event='response', url=url, status=e.code, body=e.read().decode())
    except Exception as e:  # noqa: BLE001 - the caller counts it as a failed call
        say(event='response', url=url, status=0, body=repr(e))


def main():
    server = ThreadingHTTPServer((os.environ.get('HOST', '127.0.0.1'), int(os.environ.get('PORT', '8080'))), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    say(event='listening', host=server.server_address[0], port=server.server_address[1],
        proxy=os.environ.get('HTTP_PROXY', os.environ.get('http_proxy', '')))
    for line in sys.stdin:
        if line.strip():
            call(line.strip())


if __name__ == '__main__':
    main()
