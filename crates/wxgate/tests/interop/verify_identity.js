// The README's Node verification of wxgate's identity token, run by the tests.
// usage: node verify_identity.js TOKEN KEY  -> prints the openid, or "invalid".
const crypto = require("crypto");

function verifyIdentity(token, key) {
  const i = token.lastIndexOf(".");
  const payload = token.slice(0, i), mac = Buffer.from(token.slice(i + 1), "base64url");
  const expected = crypto.createHmac("sha256", key).update(payload).digest();
  if (!payload.startsWith("v1.") || mac.length !== expected.length || !crypto.timingSafeEqual(mac, expected)) return null;
  const claims = JSON.parse(Buffer.from(payload.slice(3), "base64url").toString("utf8"));
  return claims.exp > Date.now() / 1000 ? claims : null;
}

const claims = verifyIdentity(process.argv[2], process.argv[3]);
console.log(claims ? claims.openid : "invalid");
