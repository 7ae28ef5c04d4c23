#!/usr/bin/env python3
"""A deliberately defective multi-user proxy, for credpool's target-mode tests.

It is built the way the proxies credpool's users run are built (a pool of OAuth accounts behind
one HTTP front end, rotation every K calls, token refresh inside a margin, series bans after a
429, an accounts file written back after every change), from the Python standard library only,
so it runs wherever CI runs. Every defect credpool's audits look for is one switch, off by default:

  no_single_flight   every request that finds a token due refreshes it itself (no per-account
                     refresh lock), so one expiry is refreshed by every request in flight
  no_margin          refresh only once the token is past its expiry as the proxy reckons it
                     (from the time it *received* the token, so later than the issuer's expiry
                     by the refresh latency): the token is used after it expired
  ignore_retry_info  a 429 bans nothing: the account keeps serving the series it was asked to rest
  delay_as_minutes   reads quotaResetDelay with the pattern (\\d+)m as minutes ("479.417207ms"
                     becomes 417207 minutes), the shipped proxy's bug: an account left unused long
                     after its ban ended
  unlocked_rmw       the accounts file is updated by read-modify-write without a lock, from many
                     threads at once: concurrent updates are lost
  truncating_writes  the accounts file is rewritten in place (open "w"), not through a temp file
                     and a rename: a reader sees it empty or half written
  hang_after_headers a request whose refresh failed gets 200 headers and then nothing, forever
  hardcode_token_host  refreshes go to https://oauth2.googleapis.com/token and API calls to
                     https://generativelanguage.googleapis.com whatever --token-url and --api-url
                     say, as proxies that hard-code Google's hosts do (reaches the mock only
                     through an intercepting HTTPS proxy: HTTPS_PROXY, and --cafile for its CA)

--cafile FILE trusts FILE's CA for HTTPS (Python's urllib honours HTTPS_PROXY by itself);
--unmocked-call URL makes one GET to URL at start-up (through HTTPS_PROXY like every call), so a
test sees a call to a host the harness does not mock refused and counted.

With every switch off it is a correct proxy: zero violations is the expected audit.

Front end (what clients call):
  POST /v1/chat/completions                      OpenAI shape; "stream": true gives SSE, and an
                                                 upstream failure after the headers becomes an
                                                 error chunk inside the 200 stream
  POST /v1beta/models/{model}:generateContent    Gemini shape, passed through
  POST /admin/credentials                        upload one credential JSON (json_dir format)
  GET  /healthz
Clients authenticate with "Authorization: Bearer KEY" or "x-goog-api-key: KEY" (--api-key).

Accounts: --accounts FILE in credpool's accounts.toml format (--format accounts_toml), or a
directory of OAuth credential JSON files (--format json_dir: client_id, client_secret, token,
refresh_token, expiry as ISO 8601, project_id).
"""

import argparse
import datetime
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFECTS = (
    "no_single_flight",
    "no_margin",
    "ignore_retry_info",
    "delay_as_minutes",
    "unlocked_rmw",
    "truncating_writes",
    "hang_after_headers",
    "hardcode_token_host",
)
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_API_URL = "https://generativelanguage.googleapis.com"
REFRESH_MARGIN_S = 300.0
DEFAULT_BAN_S = 6 * 3600.0
MIN_BAN_S = 3600.0


def now_ms():
    return int(time.time() * 1000)


def series_of(model):
    """The proxy's model-series mapping: what a 429 bans."""
    if "claude" in model:
        return "claude_series"
    if model.startswith("gemini-3"):
        return "gemini_3_series"
    return None


# --- TOML writing (tomllib only reads) -------------------------------------------------------


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def toml_table(prefix, table, out):
    nested = []
    for key, value in table.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append((key, value))
        elif isinstance(value, dict):
            nested.append((key, [value]))
        else:
            out.append(f"{key} = {toml_value(value)}")
    for key, tables in nested:
        for sub in tables:
            out.append("")
            out.append(f"[[{prefix}.{key}]]")
            toml_table(f"{prefix}.{key}", sub, out)


def dump_accounts(accounts):
    out = []
    for account in accounts:
        out.append("[[accounts]]")
        toml_table("accounts", account, out)
        out.append("")
    return "\n".join(out) + "\n"


# --- the accounts file ------------------------------------------------------------------------


class AccountsToml:
    """credpool's accounts.toml: every field kept, the modelled ones updated."""

    def __init__(self, path, defects):
        self.path = path
        self.defects = defects
        self.lock = threading.Lock()

    def load(self):
        with open(self.path, "rb") as f:
            return tomllib.load(f).get("accounts", [])

    def update(self, index, fields):
        """Sets `fields` on account `index` in the file."""
        if "unlocked_rmw" in self.defects:
            self._read_modify_write(index, fields)
        else:
            with self.lock:
                self._read_modify_write(index, fields)

    def _read_modify_write(self, index, fields):
        accounts = self.load()
        if "unlocked_rmw" in self.defects:
            time.sleep(0.002)  # the window a real proxy's parse and log lines leave open
        accounts[index].update(fields)
        text = dump_accounts(accounts)
        if "truncating_writes" in self.defects:
            with open(self.path, "w") as f:
                half = len(text) // 2
                f.write(text[:half])
                f.flush()
                time.sleep(0.002)
                f.write(text[half:])
        else:
            temp = f"{self.path}.tmp.{os.getpid()}.{threading.get_ident()}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(temp, self.path)


class JsonDir:
    """One OAuth credential JSON per account in a directory (how many proxies keep them)."""

    def __init__(self, path, defects):
        self.path = path
        self.defects = defects
        self.lock = threading.Lock()

    def files(self):
        return sorted(f for f in os.listdir(self.path) if f.endswith(".json"))

    def load(self):
        accounts = []
        for name in self.files():
            with open(os.path.join(self.path, name)) as f:
                cred = json.load(f)
            expiry = datetime.datetime.fromisoformat(cred["expiry"].replace("Z", "+00:00"))
            accounts.append(
                {
                    "email": cred.get("email", name[:-5]),
                    "access_token": cred["token"],
                    "refresh_token": cred["refresh_token"],
                    "client_id": cred.get("client_id", ""),
                    "client_secret": cred.get("client_secret", ""),
                    "timestamp": int(expiry.timestamp() * 1000) - 3600 * 1000,
                    "expires_in": 3600,
                    "disabled": cred.get("disabled", False),
                    "_file": name,
                }
            )
        return accounts

    def add(self, credential):
        name = re.sub(r"[^A-Za-z0-9_.@-]", "_", credential.get("email", f"cred-{len(self.files())}"))
        with self.lock:
            fd = os.open(os.path.join(self.path, name + ".json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(credential, f)

    def update(self, index, fields):
        with self.lock:
            name = self.files()[index]
            path = os.path.join(self.path, name)
            with open(path) as f:
                cred = json.load(f)
            if "access_token" in fields:
                cred["token"] = fields["access_token"]
                expires = fields["timestamp"] / 1000 + fields["expires_in"]
                cred["expiry"] = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat()
            for key in ("disabled", "error_codes"):
                if key in fields:
                    cred[key] = fields[key]
            for key, value in fields.items():
                if key.endswith("_banned_until"):
                    cred[key] = value
            temp = path + ".tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(cred, f)
            os.replace(temp, path)


# --- the pool ---------------------------------------------------------------------------------


class RefreshFailed(Exception):
    pass


class Pool:
    def __init__(self, store, args):
        self.store = store
        self.args = args
        self.defects = set(args.defects)
        self.accounts = store.load()
        self.rotation_lock = threading.Lock()
        self.index = 0
        self.calls = 0
        self.refresh_locks = {}
        self.refresh_locks_guard = threading.Lock()
        self.state_lock = threading.Lock()

    def reload(self):
        with self.state_lock:
            self.accounts = self.store.load()

    def expiry_s(self, account):
        if "timestamp" not in account or "expires_in" not in account:
            return 0.0
        return account["timestamp"] / 1000 + account["expires_in"]

    def due(self, account):
        margin = 0.0 if "no_margin" in self.defects else self.args.refresh_margin_s
        return time.time() >= self.expiry_s(account) - margin

    def banned(self, account, model):
        series = series_of(model)
        if series is None:
            return False
        until = account.get(f"{series}_banned_until", "")
        if not until:
            return False
        return datetime.datetime.fromisoformat(until).timestamp() > time.time()

    def pick(self, model):
        """Rotation every K calls over the usable accounts, under one lock."""
        with self.rotation_lock:
            n = len(self.accounts)
            if n == 0:
                return None
            if self.calls >= self.args.calls_per_rotation:
                self.index = (self.index + 1) % n
                self.calls = 0
            for step in range(n):
                i = (self.index + step) % n
                account = self.accounts[i]
                if account.get("disabled") or self.banned(account, model):
                    continue
                if step:
                    self.index, self.calls = i, 0
                self.calls += 1
                return i
            return None

    def refresh_lock(self, i):
        with self.refresh_locks_guard:
            return self.refresh_locks.setdefault(i, threading.Lock())

    def token_for(self, i):
        account = self.accounts[i]
        if not self.due(account):
            return account["access_token"]
        if "no_single_flight" in self.defects:
            return self.refresh(i)
        with self.refresh_lock(i):
            account = self.accounts[i]
            if not self.due(account):
                return account["access_token"]  # another request refreshed it meanwhile
            return self.refresh(i)

    def refresh(self, i):
        account = self.accounts[i]
        url = GOOGLE_TOKEN_URL if "hardcode_token_host" in self.defects else self.args.token_url
        form = urllib.parse.urlencode(
            {
                "client_id": account.get("client_id", "credpool-client"),
                "client_secret": account.get("client_secret", "credpool-secret"),
                "refresh_token": account["refresh_token"],
                "grant_type": "refresh_token",
            }
        ).encode()
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, data=form), timeout=30, context=self.args.tls
            ) as response:
                grant = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as failure:
            self.set_fields(i, {"disabled": True})
            raise RefreshFailed(str(failure)) from None
        # Expiry reckoned from when the answer arrived, as the analysed proxy does.
        self.set_fields(
            i,
            {"access_token": grant["access_token"], "expires_in": int(grant["expires_in"]), "timestamp": now_ms()},
        )
        return grant["access_token"]

    def set_fields(self, i, fields):
        with self.state_lock:
            self.accounts[i].update(fields)
        self.store.update(i, fields)

    def record_error(self, i, model, status, body):
        fields = {}
        codes = list(self.accounts[i].get("error_codes", []))
        if status not in codes:
            codes.append(status)
        fields["error_codes"] = codes
        series = series_of(model)
        if status == 429 and series and "ignore_retry_info" not in self.defects:
            until = time.time() + self.ban_seconds(body)
            stamp = datetime.datetime.fromtimestamp(until, datetime.timezone.utc).isoformat()
            fields[f"{series}_banned_until"] = stamp
        self.set_fields(i, fields)

    def ban_seconds(self, body):
        """max(2 x (reset - now), 1 h), or 2 x the delay, or 6 h: the proxy's rule."""
        try:
            error = json.loads(body)
            if isinstance(error, list):
                error = error[0]
            details = error["error"].get("details", [])
        except (ValueError, KeyError, TypeError, IndexError):
            details = []
        delay = reset = None
        for detail in details:
            kind = detail.get("@type", "")
            if kind.endswith("google.rpc.RetryInfo") and "retryDelay" in detail:
                delay = go_duration(detail["retryDelay"])
            elif kind.endswith("google.rpc.ErrorInfo"):
                meta = detail.get("metadata", {})
                if "quotaResetTimeStamp" in meta:
                    reset = datetime.datetime.fromisoformat(meta["quotaResetTimeStamp"].replace("Z", "+00:00")).timestamp()
                if "quotaResetDelay" in meta:
                    text = meta["quotaResetDelay"]
                    if "delay_as_minutes" in self.defects:
                        minutes = re.search(r"(\d+)m", text)
                        delay = int(minutes.group(1)) * 60.0 if minutes else go_duration(text)
                    elif delay is None:
                        delay = go_duration(text)
        if reset is not None:
            return max(2 * (reset - time.time()), MIN_BAN_S)
        if delay is not None:
            return 2 * delay
        return DEFAULT_BAN_S


def go_duration(text):
    total = 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    for number, unit in re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * units[unit]
    return total


# --- the front end ----------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pool = None
    args = None

    def log_message(self, fmt, *values):
        pass  # no access log: it would be the only output, and it is noise under load

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self):
        if not self.args.api_key:
            return True
        bearer = self.headers.get("Authorization", "")
        return bearer == f"Bearer {self.args.api_key}" or self.headers.get("x-goog-api-key") == self.args.api_key

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == "/healthz":
            self.send_json(200, {"ok": True, "accounts": len(self.pool.accounts)})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        body = self.read_body()
        if not self.authorised():
            return self.send_json(401, {"error": "bad key"})
        if self.path == "/admin/credentials":
            self.pool.store.add(json.loads(body))
            self.pool.reload()
            return self.send_json(200, {"accounts": len(self.pool.accounts)})
        if self.path == "/v1/chat/completions":
            request = json.loads(body or b"{}")
            return self.chat(request.get("model", "gemini-2.5-pro"), bool(request.get("stream")))
        match = re.fullmatch(r"/v1beta/models/([^/:]+):generateContent", self.path)
        if match:
            return self.gemini(match.group(1), body)
        self.send_json(404, {"error": "not found"})

    def call_upstream(self, model, stream, payload):
        """One upstream call on a picked account; a 401 refreshes and retries once."""
        i = self.pool.pick(model)
        if i is None:
            return None, 503, b'{"error": "no usable account"}'
        for attempt in range(2):
            token = self.pool.token_for(i)
            verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
            api_url = GOOGLE_API_URL if "hardcode_token_host" in self.pool.defects else self.args.api_url
            request = urllib.request.Request(
                f"{api_url}/v1beta/models/{model}:{verb}",
                data=payload,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            try:
                response = urllib.request.urlopen(request, timeout=60, context=self.args.tls)
                return i, 200, response
            except urllib.error.HTTPError as failure:
                error_body = failure.read()
                if failure.code == 401 and attempt == 0:
                    with self.pool.state_lock:
                        self.pool.accounts[i]["timestamp"] = 0  # due now: refresh, then retry
                    continue
                self.pool.record_error(i, model, failure.code, error_body)
                return i, failure.code, error_body
            except (urllib.error.URLError, OSError) as failure:
                return i, 502, json.dumps({"error": str(failure)}).encode()
        return i, 401, b'{"error": "unauthenticated"}'

    def gemini(self, model, payload):
        try:
            _, status, answer = self.call_upstream(model, False, payload)
        except RefreshFailed as failure:
            return self.refresh_failed(failure)
        if status == 200:
            data = answer.read()
            answer.close()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_json(status, json.loads(answer or b"{}"))

    def refresh_failed(self, failure):
        if "hang_after_headers" in self.args.defects:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            threading.Event().wait()  # forever: the client's timeout is the only way out
        return self.send_json(502, {"error": f"refresh failed: {failure}"})

    def chat(self, model, stream):
        payload = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}).encode()
        if not stream:
            try:
                _, status, answer = self.call_upstream(model, False, payload)
            except RefreshFailed as failure:
                return self.refresh_failed(failure)
            if status != 200:
                return self.send_json(status, {"error": {"message": "upstream error", "code": status}})
            data = json.load(answer)
            answer.close()
            text = "".join(p.get("text", "") for p in data["candidates"][0]["content"]["parts"])
            return self.send_json(200, openai_completion(model, text))
        # Streaming: headers first, as these proxies do; failures become an error chunk.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            _, status, answer = self.call_upstream(model, True, payload)
        except RefreshFailed as failure:
            if "hang_after_headers" in self.args.defects:
                threading.Event().wait()
            self.chunk({"error": {"message": f"refresh failed: {failure}"}})
            return self.end_chunks()
        if status != 200:
            self.chunk({"error": {"message": "upstream error", "code": status}})
            return self.end_chunks()
        for line in answer:
            line = line.strip()
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                event = event.get("response", event)
                parts = event.get("candidates", [{}])[0].get("content", {}).get("parts", [])
                self.chunk(openai_chunk(model, "".join(p.get("text", "") for p in parts)))
        answer.close()
        self.end_chunks()

    def chunk(self, value):
        data = b"data: " + json.dumps(value).encode() + b"\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunks(self):
        data = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        self.wfile.flush()


def openai_completion(model, text):
    return {
        "id": "chatcmpl-ref",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


def openai_chunk(model, text):
    return {
        "id": "chatcmpl-ref",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}}],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--accounts", required=True)
    parser.add_argument("--format", choices=("accounts_toml", "json_dir"), default="accounts_toml")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--calls-per-rotation", type=int, default=100)
    parser.add_argument(
        "--refresh-margin-s",
        type=float,
        default=REFRESH_MARGIN_S,
        help="refresh this long before expiry (the shipped proxy: 300; tests use short token lifetimes)",
    )
    parser.add_argument("--defects", default="", help="comma-separated: " + ", ".join(DEFECTS))
    parser.add_argument("--cafile", default=None, help="trust this CA file for HTTPS upstreams")
    parser.add_argument("--unmocked-call", default=None, help="GET this URL once at start-up")
    args = parser.parse_args()
    args.tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.unmocked_call:
        try:
            with urllib.request.urlopen(args.unmocked_call, timeout=5, context=args.tls) as response:
                outcome = f"status {response.status}"
        except (urllib.error.URLError, OSError) as failure:
            outcome = f"refused: {failure}"
        print(f"unmocked call to {args.unmocked_call}: {outcome}", file=sys.stderr, flush=True)
    args.defects = [d for d in args.defects.split(",") if d]
    unknown = [d for d in args.defects if d not in DEFECTS]
    if unknown:
        parser.error(f"unknown defect(s) {unknown}; expected some of {', '.join(DEFECTS)}")
    store = AccountsToml(args.accounts, args.defects) if args.format == "accounts_toml" else JsonDir(args.accounts, args.defects)
    Handler.pool = Pool(store, args)
    Handler.args = args
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"reference proxy on 127.0.0.1:{args.port}, defects: {args.defects or 'none'}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
