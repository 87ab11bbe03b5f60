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
# A line `mcp URL` talks MCP (Streamable HTTP, plain JSON-RPC, answers as JSON or
# SSE) to the tools server at URL: initialize, tools/list, then tools/call of
# search and of delete_all; one line {"event": "mcp", "url", "tools", "search", "delete_all"}.
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


MCP_VERSION = '2025-06-18'


def rpc(url, method, params=None, id=None):
    """One JSON-RPC message POSTed to an MCP endpoint; the answer to `id` (JSON or an SSE stream), or None for a notification."""
    msg = {'jsonrpc': '2.0', 'method': method}
    if id is not None:
        msg['id'] = id
    if params is not None:
        msg['params'] = params
    req = urllib.request.Request(url, data=json.dumps(msg).encode(), method='POST', headers={
        'content-type': 'application/json', 'accept': 'application/json, text/event-stream', 'mcp-protocol-version': MCP_VERSION})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            kind, body = r.headers.get('content-type', ''), r.read().decode()
    except urllib.error.HTTPError as e:
        kind, body = e.headers.get('content-type', ''), e.read().decode()
    if id is None:
        return None
    if kind.startswith('text/event-stream'):
        for line in body.splitlines():
            if line.startswith('data:'):
                answer = json.loads(line[5:])
                if answer.get('id') == id:
                    return answer
        raise ValueError(f'no answer to {method} in the event stream')
    return json.loads(body)


def mcp(url):
    try:
        init = rpc(url, 'initialize', {'protocolVersion': MCP_VERSION, 'capabilities': {}, 'clientInfo': {'name': NAME, 'version': '1.0'}}, 1)
        rpc(url, 'notifications/initialized')
        listed = rpc(url, 'tools/list', {}, 2)
        search = rpc(url, 'tools/call', {'name': 'search', 'arguments': {'query': 'spiffe'}}, 3)
        delete_all = rpc(url, 'tools/call', {'name': 'delete_all', 'arguments': {}}, 4)
        say(event='mcp', url=url, server=init.get('result', {}).get('serverInfo', {}).get('name'),
            tools=[t['name'] for t in listed.get('result', {}).get('tools', [])], search=search, delete_all=delete_all)
    except Exception as e:  # noqa: BLE001 - the caller counts it as a failed session
        say(event='mcp', url=url, error=repr(e))


def main():
    server = ThreadingHTTPServer((os.environ.get('HOST', '127.0.0.1'), int(os.environ.get('PORT', '8080'))), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    say(event='listening', host=server.server_address[0], port=server.server_address[1],
        proxy=os.environ.get('HTTP_PROXY', os.environ.get('http_proxy', '')))
    for line in sys.stdin:
        words = line.split()
        if len(words) == 2 and words[0] == 'mcp':
            mcp(words[1])
        elif words:
            call(line.strip())


if __name__ == '__main__':
    main()
