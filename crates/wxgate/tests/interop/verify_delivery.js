// The README's Node check of a wxgate delivery's signature, run by the tests.
// usage: node verify_delivery.js SECRET TIMESTAMP SIGNATURE BODY_FILE -> prints "ok" or "invalid".
const crypto = require("crypto");
const fs = require("fs");

function verifyDelivery(secret, timestamp, signature, rawBody, maxSkew = 300) {
  const expected = "sha256=" + crypto.createHmac("sha256", secret).update(`${timestamp}.`).update(rawBody).digest("hex");
  const a = Buffer.from(expected), b = Buffer.from(signature);
  return a.length === b.length && crypto.timingSafeEqual(a, b) && Math.abs(Date.now() / 1000 - Number(timestamp)) <= maxSkew;
}

const [secret, timestamp, signature, path] = process.argv.slice(2);
console.log(verifyDelivery(secret, timestamp, signature, fs.readFileSync(path)) ? "ok" : "invalid");
