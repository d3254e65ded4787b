// graphql-http's server audit (the GraphQL over HTTP spec's MUST and SHOULD rules) against
// a running Clientdesk: node audit.mjs <graphql url> <bearer token>
// Prints a JSON summary; exits 1 when a MUST rule fails.
import { auditServer } from "graphql-http";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node audit.mjs <url> <token>");
  process.exit(2);
}
const authorized = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn: authorized });
const count = (status) => results.filter((result) => result.status === status).length;
const report = {
  ok: count("ok"),
  warn: count("warn"),
  error: count("error"),
  warnings: results.filter((r) => r.status === "warn").map((r) => `${r.id} ${r.name}: ${r.reason}`),
  errors: results.filter((r) => r.status === "error").map((r) => `${r.id} ${r.name}: ${r.reason}`),
};
console.log(JSON.stringify(report, null, 2));
process.exit(report.error > 0 ? 1 : 0);
