// A minimal "owner's service" for the forwarding benchmark: answers every delivery
// at once with a text reply. Usage: node bench/fwd-service.js PORT
const http = require("http");
const port = Number(process.argv[2] || 19000);
http
  .createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"reply":{"type":"text","content":"ok"}}');
    });
  })
  .listen(port, "127.0.0.1");
