// A webhook receiver that verifies Herald's signatures (Standard Webhooks) with Node's built-in
// modules only: 204 for a verified delivery (printing its event type), 401 for anything else.
//
//   HERALD_WEBHOOK_SECRET=whsec_... node examples/receivers/node/receiver.mjs 8000

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const TOLERANCE_SECS = 5 * 60;
const secret = process.env.HERALD_WEBHOOK_SECRET;
if (!secret) {
  console.error("set HERALD_WEBHOOK_SECRET to the webhook's whsec_ secret");
  process.exit(2);
}
// The HMAC key is the bytes the base64 after `whsec_` stands for.
const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");

// `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`;
// after a rotation there are two, and either may match.
function verify(headers, body, now) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !/^\d+$/.test(timestamp ?? "") || !signatures) return false;
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECS) return false;
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  return signatures.split(" ").some((signature) => {
    const [version, encoded] = signature.split(",");
    const tag = Buffer.from(encoded ?? "", "base64");
    // timingSafeEqual throws on different lengths; the length is no secret.
    return version === "v1" && tag.length === expected.length && timingSafeEqual(tag, expected);
  });
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks); // the raw bytes: re-serialized JSON would not verify
    if (verify(req.headers, body, Date.now() / 1000)) {
      console.log(JSON.parse(body).type);
      res.writeHead(204).end();
    } else {
      console.error("rejected: missing, stale or unmatched signature");
      res.writeHead(401).end();
    }
  });
});
const port = Number(process.argv[2] ?? process.env.PORT ?? 8000);
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
