#!/usr/bin/env python3
"""A minimal WeChat callback server written with wechatpy, for testing wxgate's sim
and doctor against a peer implementation (no Flask needed).

usage: wechatpy_server.py TOKEN ENCODING_AES_KEY APPID
Listens on 127.0.0.1 on a free port and prints "listening PORT". GET verifies the
signature and echoes echostr; POST verifies, decrypts when encrypt_type=aes, and
replies to text with a text echo (encrypted when the request was).
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, InvalidAppIdException
from wechatpy.utils import check_signature

TOKEN, AES_KEY, APPID = sys.argv[1:4]
crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query(self):
        return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

    def do_GET(self):
        q = self.query()
        try:
            check_signature(TOKEN, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            return self.answer(403, "invalid signature")
        self.answer(200, q.get("echostr", ""))

    def do_POST(self):
        q = self.query()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        try:
            check_signature(TOKEN, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
            encrypted = q.get("encrypt_type") == "aes"
            if encrypted:
                body = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, InvalidAppIdException, KeyError):
            return self.answer(403, "invalid signature")
        msg = parse_message(body)
        if msg.type != "text":
            return self.answer(200, "success")
        reply = create_reply(msg.content, msg).render()
        if encrypted:
            reply = crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
        self.answer(200, reply, "application/xml")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
