// Parses LogQL with Grafana's own grammar (the one its Loki query editor uses).
//
// stdin: a JSON array of queries. stdout: a JSON array, one verdict per query,
// {"ok": true} or {"ok": false, "position": <offset>, "near": "<text there>"}.
// A lezer parser never throws on bad input: it recovers and leaves error nodes
// (shown as ⚠ in a tree dump) in the tree, so a query is valid only if its tree
// has none.
import { readFileSync } from "node:fs";
import { parser } from "@grafana/lezer-logql";

function verdict(query) {
  let error = null;
  parser.parse(query).iterate({
    enter(node) {
      if (error === null && node.type.isError) {
        error = { position: node.from, near: query.slice(node.from, node.from + 20) };
      }
      return error === null;
    },
  });
  return error === null ? { ok: true } : { ok: false, ...error };
}

const queries = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(queries.map(verdict)));
