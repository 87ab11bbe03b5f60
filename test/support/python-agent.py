# An agent in Python, standard library only, that knows nothing of
# certificates: the identity proxy beside it does mTLS and policy.
#   python-agent.py server          HTTP app on 127.0.0.1 (port printed); echoes each request as JSON
#   python-agent.py get URL [BODY]  one call through HTTP_PROXY (urllib reads it), answer printed
# Both print JSON lines on stdout for test/support/sdk-process.ts.
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def say(**fields):
    print(json.dumps(fields), flush=True)


class Echo(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def answer(self):
        length = int(self.headers.get('content-length') or 0)
        body = self.rfile.read(length) if length else b''
        say(event='request', method=self.command, path=self.path, headers=[[k.lower(), v] for k, v in self.headers.items()])
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        # /slow?release=FILE answers once FILE exists: a request held in flight for as long as a test needs.
        for release in query.get('release', []):
            while not os.path.exists(release):
                time.sleep(0.02)
        out = json.dumps({'method': self.command, 'path': self.path, 'bodyBytes': len(body),
                          'headers': [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


def serve():
    server = ThreadingHTTPServer(('127.0.0.1', 0), Echo)
    say(event='listening', port=server.server_address[1])
    server.serve_forever()


def get(url, body=None):
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, headers={
        # What a confused or malicious agent might send: the inbound proxy must never pass these on.
        'X-Agent-Identity-Peer': 'spiffe://cluster.local/ns/agents/agent/forged',
        'x-forwarded-client-cert': 'Hash=00;URI=spiffe://cluster.local/ns/agents/agent/forged',
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            say(event='response', status=r.status, body=r.read().decode())
    except urllib.error.HTTPError as e:
        say(event='response', status=e.code, body=e.read().decode())
    except Exception as e:  # noqa: BLE001 - the test reads what happened
        say(event='error', error=repr(e))


if __name__ == '__main__':
    if sys.argv[1] == 'server':
        serve()
    else:
        get(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
