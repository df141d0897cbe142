// Runs the graphql-http audit (GraphQL over HTTP) against the server at the URL given, prints every result,
// and exits 1 on any error or warning. Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs URL");
  process.exit(2);
}
const results = await auditServer({ url });
const counts = { ok: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  const line = `${result.status.padEnd(5)} ${result.id} ${result.name}`;
  if (result.status === "ok") {
    console.log(line);
  } else {
    const { response, ...reason } = result.reason ?? {};
    console.log(`${line}\n      ${typeof result.reason === "string" ? result.reason : JSON.stringify(reason)}`);
  }
}
console.log(`graphql-http audit of ${url}: ${counts.ok} ok, ${counts.warn} warnings, ${counts.error} errors`);
process.exit(counts.warn || counts.error ? 1 : 0);
