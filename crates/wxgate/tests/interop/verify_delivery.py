"""The README's Python check of a wxgate delivery's signature, run by the tests.
usage: verify_delivery.py SECRET TIMESTAMP SIGNATURE BODY_FILE -> prints "ok" or "invalid"."""
import hashlib, hmac, sys, time


def verify_delivery(secret: str, timestamp: str, signature: str, body: bytes, max_skew=300) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) <= max_skew


secret, timestamp, signature, path = sys.argv[1:5]
print("ok" if verify_delivery(secret, timestamp, signature, open(path, "rb").read()) else "invalid")
